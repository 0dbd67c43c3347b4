package resolvers

import (
	"context"
	"errors"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/aisle/aisle/aisle"
)

// ErrorPresenter maps every resolver error to a GraphQL error whose
// extensions.code is a domain code. Domain errors keep their user-safe message;
// anything else is logged (httpapi.LogHandler adds the request id and the
// operation's bounded name) and shown as a generic internal error, so SQL,
// Redis or Kafka details never reach clients.
func ErrorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var domainErr *aisle.Error
		var parserErr *gqlerror.Error
		switch {
		case errors.As(err, &domainErr):
			gqlErr.Message = domainErr.Message
			setCode(gqlErr, domainErr.Code)
		case errors.As(err, &parserErr) && parserErr.Unwrap() == nil:
			// Errors the executor made itself (validation, variable coercion)
			// describe the caller's document: they are safe to show as they are.
			if _, ok := gqlErr.Extensions["code"]; !ok {
				setCode(gqlErr, aisle.EINVALID)
			}
		case isArgumentError(ctx, gqlErr):
			// Coercing the caller's arguments failed (a malformed Time, say):
			// the message describes their input, as validation's do.
			setCode(gqlErr, aisle.EINVALID)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			// Usually the caller gave up or the server's answer deadline
			// passed; either way operators may want to see where.
			log.InfoContext(ctx, "graphql: request cancelled or timed out", "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message = "the request was cancelled or timed out"
			setCode(gqlErr, aisle.EUNAVAILABLE)
		case aisle.IsUnavailable(err):
			// A dependency is down: the caller can do nothing but retry, so
			// say that; which one and why is for the logs.
			log.WarnContext(ctx, "graphql: dependency unavailable", "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message = aisle.MessageUnavailable
			setCode(gqlErr, aisle.EUNAVAILABLE)
		default:
			log.ErrorContext(ctx, "graphql: internal error", "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message = aisle.ErrorMessage(err)
			setCode(gqlErr, aisle.EINTERNAL)
		}
		return gqlErr
	}
}

// isArgumentError reports whether e arose from coercing the arguments of
// the field in ctx. gqlgen puts such an error on a path below the field,
// through one of its arguments; a resolver's own errors sit at the field.
func isArgumentError(ctx context.Context, e *gqlerror.Error) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Field == nil || fc.Field.Definition == nil {
		return false
	}
	fieldPath := fc.Path()
	if len(e.Path) <= len(fieldPath) {
		return false
	}
	name, ok := e.Path[len(fieldPath)].(ast.PathName)
	return ok && fc.Field.Definition.Arguments.ForName(string(name)) != nil
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = make(map[string]any)
	}
	e.Extensions["code"] = code
}
