package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aisle/aisle/aisle"
	"github.com/aisle/aisle/auth"
	"github.com/aisle/aisle/postgres"
)

// operatorMessage is what a command says of err: a domain error's message,
// and anything else whole. Operators need the real cause of an
// infrastructure failure, which the GraphQL API hides from its clients.
func operatorMessage(err error) string {
	var e *aisle.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

func runMigrate(ctx context.Context, args []string, stderr io.Writer) error {
	fs, c := newCommand("migrate", stderr)
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	return postgres.Migrate(ctx, c.directDatabaseURL(), commandLogger(c, stderr))
}

const keysUsage = "usage: aisle keys create --role ROLE [--retailer ID] [--user ID] --name N\n       aisle keys list\n       aisle keys revoke KEY_ID | --name N"

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	switch args[0] {
	case "create":
		return createKey(ctx, args[1:], stdout, stderr)
	case "list":
		return listKeys(ctx, args[1:], stdout, stderr)
	case "revoke":
		return revokeKeys(ctx, args[1:], stdout, stderr)
	}
	return errors.New(keysUsage)
}

// createKey prints the new key's ID, which `keys revoke` takes, and the key
// alone on the last line, for scripts.
func createKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newCommand("keys create", stderr)
	role := fs.String("role", "", "customer, shopper, retailer, ops or service")
	retailerID := fs.String("retailer", "", "the retailer a retailer key acts for")
	userID := fs.String("user", "", "the user a customer key acts for")
	name := fs.String("name", "", "what the key is for, shown in audits")
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	r, err := aisle.ParseRole(*role)
	if err != nil {
		return errors.New(operatorMessage(err))
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("--name is required")
	}
	db, err := postgres.Open(ctx, c.DatabaseURL, commandLogger(c, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	key, hash := auth.NewKey()
	id, err := db.CreateKey(ctx, hash, r, *retailerID, *userID, *name)
	if err != nil {
		return fmt.Errorf("create key: %s", operatorMessage(err))
	}
	fmt.Fprintf(stdout, "created %s key %s %q (revoke it with `aisle keys revoke %s`); store the key now, it is not shown again:\n%s\n", r, id, *name, id, key)
	return nil
}

// listKeys prints every key, live and revoked, but never a key itself.
// Servers keep no record of when a key was last used.
func listKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newCommand("keys list", stderr)
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	db, err := postgres.Open(ctx, c.DatabaseURL, commandLogger(c, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	keys, err := db.Keys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %s", operatorMessage(err))
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KEY_ID\tNAME\tROLE\tSCOPE\tCREATED\tREVOKED")
	for _, k := range keys {
		scope := "-"
		switch {
		case k.RetailerID != "":
			scope = "retailer " + k.RetailerID
		case k.UserID != "":
			scope = "user " + k.UserID
		}
		revoked := "-"
		if k.RevokedAt != nil {
			revoked = k.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, scope, k.CreatedAt.UTC().Format(time.RFC3339), revoked)
	}
	return w.Flush()
}

// revokeKeys revokes one key by ID or every live key with a name. Servers
// refuse the key over HTTP within their key cache TTL and close its open
// websockets (4403) within twice that (--key-cache-ttl).
func revokeKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newCommand("keys revoke", stderr)
	name := fs.String("name", "", "revoke every live key with this name")
	rest, err := parseCommandArgs(fs, args)
	if err != nil {
		return err
	}
	var id string
	if len(rest) > 0 { // the ID, possibly followed by more flags
		id = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("keys revoke: unexpected arguments %q", fs.Args())
		}
	}
	if (id == "") == (*name == "") {
		return fmt.Errorf("keys revoke: give a key ID or --name, not both\n%s", keysUsage)
	}
	db, err := postgres.Open(ctx, c.DatabaseURL, commandLogger(c, stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	ids := []string{id}
	if id != "" {
		err = db.RevokeKey(ctx, id)
	} else {
		ids, err = db.RevokeKeysByName(ctx, *name)
	}
	if err != nil {
		return fmt.Errorf("revoke key: %s", operatorMessage(err))
	}
	fmt.Fprintf(stdout, "revoked %s\n", strings.Join(ids, " "))
	return nil
}
