package aisle

import "context"

// Role is what an API key may do. See docs/design.md "Access".
type Role string

const (
	RoleAnonymous Role = "anonymous"
	RoleCustomer  Role = "customer"
	RoleShopper   Role = "shopper"
	RoleRetailer  Role = "retailer"
	RoleOps       Role = "ops"
	RoleService   Role = "service"
)

// ParseRole validates a role name given by an operator.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleCustomer, RoleShopper, RoleRetailer, RoleOps, RoleService:
		return r, nil
	}
	return "", Errorf(EINVALID, "unknown role %q (want customer, shopper, retailer, ops or service)", s)
}

// Principal is who is calling: the role of their API key and what it is bound to.
type Principal struct {
	KeyID      string
	Name       string
	Role       Role
	UserID     string // set for customer keys
	RetailerID string // set for retailer keys
}

// Anonymous is the principal of a request without credentials.
var Anonymous = &Principal{Role: RoleAnonymous}

type principalKey struct{}

// NewContextWithPrincipal returns ctx carrying p.
func NewContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the caller, or Anonymous when none was set.
func PrincipalFromContext(ctx context.Context) *Principal {
	if p, ok := ctx.Value(principalKey{}).(*Principal); ok && p != nil {
		return p
	}
	return Anonymous
}

// CanReportPicks reports whether p may publish pick events.
func (p *Principal) CanReportPicks() bool {
	return p.Role == RoleShopper || p.Role == RoleService
}

// CanPushInventory reports whether p may push inventory for a store owned by retailerID.
func (p *Principal) CanPushInventory(retailerID string) bool { return p.CanManageStore(retailerID) }

// CanManageStore reports whether p may change a store owned by retailerID:
// its inventory and its assortment.
func (p *Principal) CanManageStore(retailerID string) bool {
	switch p.Role {
	case RoleService:
		return true
	case RoleRetailer:
		return p.RetailerID != "" && p.RetailerID == retailerID
	}
	return false
}

// ActingUser returns the user an action is taken for: the user the key is
// bound to, when it is (requested must then be empty or the same user, else
// EFORBIDDEN), or else requested, which is then required (field names it in
// the error).
func (p *Principal) ActingUser(requested, field string) (string, error) {
	if p.UserID != "" {
		if requested != "" && requested != p.UserID {
			return "", Errorf(EFORBIDDEN, "this key acts for user %s only", p.UserID)
		}
		return p.UserID, nil
	}
	if requested == "" {
		return "", Errorf(EINVALID, "%s is required for keys not bound to a user", field)
	}
	return requested, nil
}

// Authenticated reports whether p presented a valid key.
func (p *Principal) Authenticated() bool { return p.Role != RoleAnonymous }

// CanSeeFraud reports whether p may read fraud assessments and alerts and
// label orders: fraud data is never visible to customers, shoppers or
// retailers (docs/design.md "Access").
func (p *Principal) CanSeeFraud() bool {
	return p.Role == RoleOps || p.Role == RoleService
}
