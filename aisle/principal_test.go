package aisle

import "testing"

func TestActingUser(t *testing.T) {
	t.Parallel()
	bound := &Principal{Role: RoleCustomer, UserID: "u-1"}
	service := &Principal{Role: RoleService}
	for _, tc := range []struct {
		name      string
		p         *Principal
		requested string
		want      string
		code      string
	}{
		{"bound key, no user named", bound, "", "u-1", ""},
		{"bound key names itself", bound, "u-1", "u-1", ""},
		{"bound key names another user", bound, "u-2", "", EFORBIDDEN},
		{"unbound key names a user", service, "u-2", "u-2", ""},
		{"unbound key names no one", service, "", "", EINVALID},
	} {
		got, err := tc.p.ActingUser(tc.requested, "userId")
		if got != tc.want || ErrorCode(err) != tc.code {
			t.Errorf("%s: %q, %v; want %q, code %q", tc.name, got, err, tc.want, tc.code)
		}
	}
}
