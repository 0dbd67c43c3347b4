-- API keys. Only the SHA-256 of a key is stored; the key itself is shown once
-- at creation. A key's role decides what it may be bound to (docs/design.md
-- "Access"): customer keys to a user, retailer keys to a retailer, shopper
-- keys optionally to the shopper they report for, the other roles to nothing.

-- +goose Up
CREATE SEQUENCE api_keys_id_seq;

CREATE TABLE api_keys (
    id          text PRIMARY KEY DEFAULT 'k-' || nextval('api_keys_id_seq'),
    name        text NOT NULL CHECK (name <> ''),
    role        text NOT NULL CHECK (role IN ('customer', 'shopper', 'retailer', 'ops', 'service')),
    user_id     text CHECK (user_id <> ''),
    retailer_id text REFERENCES retailers (id),
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CONSTRAINT api_keys_role_binding CHECK (
        CASE role
            WHEN 'customer' THEN user_id IS NOT NULL AND retailer_id IS NULL
            WHEN 'retailer' THEN retailer_id IS NOT NULL AND user_id IS NULL
            WHEN 'shopper' THEN retailer_id IS NULL
            ELSE user_id IS NULL AND retailer_id IS NULL
        END
    )
);
ALTER SEQUENCE api_keys_id_seq OWNED BY api_keys.id;

-- +goose Down
DROP TABLE api_keys;
