package features

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
)

//go:embed applied.lua
var appliedPrelude string

// appliers are the scripts made by newApplierScript, whose calls start with
// markArgs. Written only while the package's variables are initialised.
var appliers = map[*redis.Script]bool{}

// newApplierScript returns an applier's script with the effectively-once
// helpers of applied.lua (already_applied, mark_applied) in front of it.
// Scripts are immutable: go-redis only derives their SHA1.
func newApplierScript(source string) *redis.Script {
	sc := redis.NewScript(appliedPrelude + source)
	appliers[sc] = true
	return sc
}

// call is one script call: keys all in one slot (one hash tag).
type call struct {
	script *redis.Script
	keys   []string
	args   []any
}

// evalEach runs calls in one pipelined round trip and returns each call's
// result. A second round trip is needed only when Redis lost its script
// cache (a restart, a failover, SCRIPT FLUSH) since the script was loaded:
// the scripts are reloaded and the calls that failed are run again (see
// retriedCalls). The first other error fails the whole call; scripts are
// idempotent, so the caller retries all of them.
func (s *Store) evalEach(ctx context.Context, calls []call) ([]any, error) {
	results := make([]any, len(calls))
	pending := make([]int, len(calls))
	for i := range pending {
		pending[i] = i
	}
	for pass := 0; pass < 2; pass++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(pending))
		for j, i := range pending {
			c := calls[i]
			cmds[j] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx) // errors are per command, read below

		var noScript []int
		for j, i := range pending {
			v, err := cmds[j].Result()
			switch {
			case err == nil:
				results[i] = v
			case redis.HasErrorPrefix(err, "NOSCRIPT"):
				noScript = append(noScript, i)
			default:
				return nil, err
			}
		}
		if len(noScript) == 0 {
			return results, nil
		}
		loaded := map[*redis.Script]bool{}
		for _, i := range noScript {
			if sc := calls[i].script; !loaded[sc] {
				if err := sc.Load(ctx, s.rdb).Err(); err != nil {
					return nil, err
				}
				loaded[sc] = true
			}
		}
		calls = slices.Clone(calls) // the caller's stay as they were
		retriedCalls(calls, pending, noScript)
		pending = noScript
	}
	return nil, errors.New("redis keeps forgetting the script")
}

// retriedCalls prepares the calls of a pass that met NOSCRIPT (noScript,
// in pass order) to run again. Another client can load the script while
// the pass runs, so a later call of the pass on the same entity and
// partition may have run and moved the entity's mark past an earlier one
// that failed: that one, recognised by its offset, would be skipped as a
// replay and lost. It is run again recognised by its event's digest only,
// as an event without a Kafka origin is, and leaves the mark where the
// later call put it. Appliers take events of one entity in any order
// (they come from several partitions), so it lands as a late event would.
func retriedCalls(calls []call, pass, noScript []int) {
	failed := map[int]bool{}
	for _, i := range noScript {
		failed[i] = true
	}
	type entityMark struct{ key, mark string }
	ranLater := map[entityMark]bool{}
	for _, i := range slices.Backward(pass) {
		c := calls[i]
		if !appliers[c.script] || c.args[0] == "" {
			continue
		}
		em := entityMark{c.keys[0], c.args[0].(string)}
		if !failed[i] {
			ranLater[em] = true
			continue
		}
		if ranLater[em] {
			args := slices.Clone(c.args)
			args[0] = ""
			calls[i].args = args
		}
	}
}

// applyEach applies each update with one call (built by build) in one
// pipelined round trip; applied[i] reports whether updates[i] changed the
// features, which the scripts say by returning 1.
func (s *Store) applyEach(ctx context.Context, what string, updates []aisle.Update, build func(aisle.Update) (call, error)) (applied []bool, err error) {
	if len(updates) == 0 {
		return nil, nil
	}
	calls := make([]call, len(updates))
	for i, u := range updates {
		if calls[i], err = build(u); err != nil {
			return nil, err
		}
	}
	results, err := s.evalEach(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("apply %s events: %w", what, err)
	}
	applied = make([]bool, len(updates))
	for i, r := range results {
		applied[i] = r == int64(1)
	}
	return applied, nil
}
