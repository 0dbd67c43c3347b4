package features

import (
	"context"
	_ "embed"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
)

//go:embed applied.lua
var appliedPrelude string

// newApplierScript returns an applier's script with the effectively-once
// helpers of applied.lua (already_applied, mark_applied) in front of it.
// Scripts are immutable: go-redis only derives their SHA1.
func newApplierScript(source string) *redis.Script {
	return redis.NewScript(appliedPrelude + source)
}

// Update is one decoded event to apply, with where it was read. Each topic's
// events are applied to Redis by one script, whose dedup key (by event id)
// and offset watermark (by topic and partition) make a redelivery a no-op.
type Update struct {
	Event  *aisle.Decoded
	Origin Origin
}

// evalEach runs script once per keys[i]/args[i] in one pipelined round trip
// and returns each call's result. A second round trip is needed only when
// Redis lost its script cache (a restart) since the script was loaded: the
// script is reloaded and the calls that failed are run again. The first
// other error fails the whole call; scripts are idempotent, so the caller
// retries all of them.
func (s *Store) evalEach(ctx context.Context, script *redis.Script, keys [][]string, args [][]any) ([]any, error) {
	results := make([]any, len(keys))
	pending := make([]int, len(keys))
	for i := range pending {
		pending[i] = i
	}
	for pass := 0; pass < 2; pass++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(pending))
		for j, i := range pending {
			cmds[j] = script.EvalSha(ctx, pipe, keys[i], args[i]...)
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
		if err := script.Load(ctx, s.rdb).Err(); err != nil {
			return nil, err
		}
		pending = noScript
	}
	return nil, errors.New("redis keeps forgetting the script")
}

// applyEach applies each update with one call of script (built by call) in
// one pipelined round trip; applied[i] reports whether updates[i] changed
// the features, which the scripts say by returning 1.
func (s *Store) applyEach(ctx context.Context, what string, script *redis.Script, updates []Update, call func(Update) ([]string, []any, error)) (applied []bool, err error) {
	if len(updates) == 0 {
		return nil, nil
	}
	keys := make([][]string, len(updates))
	args := make([][]any, len(updates))
	for i, u := range updates {
		if keys[i], args[i], err = call(u); err != nil {
			return nil, err
		}
	}
	results, err := s.evalEach(ctx, script, keys, args)
	if err != nil {
		return nil, fmt.Errorf("apply %s events: %w", what, err)
	}
	applied = make([]bool, len(updates))
	for i, r := range results {
		applied[i] = r == int64(1)
	}
	return applied, nil
}
