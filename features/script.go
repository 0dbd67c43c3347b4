package features

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/aisle/aisle/aisle"
)

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
