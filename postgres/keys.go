package postgres

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/aisle/aisle/aisle"
)

// maxKeyNameLength bounds an API key's human-readable name.
const maxKeyNameLength = 200

// CreateKey stores an API key for role by its hash (the caller mints the
// key, auth.NewKey, and shows it once: the database never sees it) and
// returns its ID (for RevokeKey). A customer key must be bound to a user and a retailer key to an existing
// retailer; other roles take no binding. Errors: EINVALID for a bad role,
// name or binding; ENOTFOUND for an unknown retailer.
func (db *DB) CreateKey(ctx context.Context, hash []byte, role aisle.Role, retailerID, userID, name string) (id string, err error) {
	if err := validateKey(role, retailerID, userID, name); err != nil {
		return "", err
	}
	err = db.pool.QueryRow(ctx, `INSERT INTO api_keys (name, role, user_id, retailer_id, key_hash, created_at)
		VALUES ($1, $2, nullif($3, ''), nullif($4, ''), $5, $6) RETURNING id`,
		name, string(role), userID, retailerID, hash, db.Now()).Scan(&id)
	if pgErrorCode(err) == pgForeignKeyViolation {
		return "", aisle.Errorf(aisle.ENOTFOUND, "retailer %q not found", retailerID)
	}
	if err != nil {
		return "", formatError(err, "API key")
	}
	return id, nil
}

// KeyInfo is what an operator may see of an API key: never the key or its
// hash.
type KeyInfo struct {
	ID, Name   string
	Role       aisle.Role
	UserID     string // the user a customer or shopper key acts for, or ""
	RetailerID string // the retailer a retailer key acts for, or ""
	CreatedAt  time.Time
	RevokedAt  *time.Time // nil while the key is live
}

// Keys returns every API key, live and revoked, oldest first.
func (db *DB) Keys(ctx context.Context) ([]KeyInfo, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name, role, coalesce(user_id, ''), coalesce(retailer_id, ''), created_at, revoked_at
		FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (KeyInfo, error) {
		var k KeyInfo
		var role string
		err := row.Scan(&k.ID, &k.Name, &role, &k.UserID, &k.RetailerID, &k.CreatedAt, &k.RevokedAt)
		k.Role = aisle.Role(role)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

// validateKey checks a new key's role, name and binding; the table's CHECK
// constraints enforce the same binding rules as a last line of defence.
func validateKey(role aisle.Role, retailerID, userID, name string) error {
	if _, err := aisle.ParseRole(string(role)); err != nil {
		return err
	}
	if name == "" || !validText(name) || utf8.RuneCountInString(name) > maxKeyNameLength {
		return aisle.Errorf(aisle.EINVALID, "key name must be 1 to %d characters of text", maxKeyNameLength)
	}
	switch role {
	case aisle.RoleCustomer:
		if err := aisle.ValidateID("user ID", userID); err != nil {
			return aisle.Errorf(aisle.EINVALID, "a customer key must be bound to a user: %s", aisle.ErrorMessage(err))
		}
		if retailerID != "" {
			return aisle.Errorf(aisle.EINVALID, "a customer key cannot be bound to a retailer")
		}
	case aisle.RoleRetailer:
		if err := aisle.ValidateID("retailer ID", retailerID); err != nil {
			return aisle.Errorf(aisle.EINVALID, "a retailer key must be bound to a retailer: %s", aisle.ErrorMessage(err))
		}
		if userID != "" {
			return aisle.Errorf(aisle.EINVALID, "a retailer key cannot be bound to a user")
		}
	case aisle.RoleShopper:
		// A shopper key may name the shopper it reports picks for.
		if userID != "" {
			if err := aisle.ValidateID("user ID", userID); err != nil {
				return err
			}
		}
		if retailerID != "" {
			return aisle.Errorf(aisle.EINVALID, "a shopper key cannot be bound to a retailer")
		}
	default:
		if retailerID != "" || userID != "" {
			return aisle.Errorf(aisle.EINVALID, "a %s key cannot be bound to a user or retailer", role)
		}
	}
	return nil
}

// PrincipalByKeyHash returns the principal of the live key whose hash
// (auth.HashKey) is hash. Errors: EUNAUTHENTICATED for an unknown or revoked
// key.
func (db *DB) PrincipalByKeyHash(ctx context.Context, hash []byte) (*aisle.Principal, error) {
	var p aisle.Principal
	var role string
	err := db.pool.QueryRow(ctx, `SELECT id, name, role, coalesce(user_id, ''), coalesce(retailer_id, '')
		FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`, hash).
		Scan(&p.KeyID, &p.Name, &role, &p.UserID, &p.RetailerID)
	if err != nil {
		err = formatError(err, "API key")
		if aisle.ErrorCode(err) == aisle.ENOTFOUND {
			// The same answer for unknown and revoked keys: callers learn
			// nothing about which keys exist.
			return nil, aisle.Errorf(aisle.EUNAUTHENTICATED, "invalid or revoked API key")
		}
		return nil, err
	}
	p.Role = aisle.Role(role)
	return &p, nil
}

// RevokeKey revokes a key by ID from now on. Revoking a revoked key is a
// no-op that keeps the first revocation time. Processes that cached the key
// (auth's cache) honour the revocation within their cache TTL. Errors:
// ENOTFOUND.
func (db *DB) RevokeKey(ctx context.Context, keyID string) error {
	tag, err := db.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`,
		keyID, db.Now())
	if err != nil {
		return fmt.Errorf("revoke API key %q: %w", keyID, err)
	}
	if tag.RowsAffected() == 0 {
		return aisle.Errorf(aisle.ENOTFOUND, "API key %q not found", keyID)
	}
	return nil
}

// RevokeKeysByName revokes every live key named name and returns their IDs:
// names are not unique, and an operator revoking "ci" means all of them.
// Errors: ENOTFOUND when no live key has that name.
func (db *DB) RevokeKeysByName(ctx context.Context, name string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING id`,
		name, db.Now())
	if err != nil {
		return nil, fmt.Errorf("revoke API keys named %q: %w", name, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("revoke API keys named %q: %w", name, err)
	}
	if len(ids) == 0 {
		return nil, aisle.Errorf(aisle.ENOTFOUND, "no live API key is named %q", name)
	}
	return ids, nil
}
