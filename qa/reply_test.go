package qa

import "testing"

func TestReplyText(t *testing.T) {
	tests := []struct{ in, want string }{
		{" Kwyre demo model.\n", "Kwyre demo model."},
		{"Kwyre demo\ninference: time=x level=INFO msg=request\n", "Kwyre demo"},
		{"kwyre-init: started x\nA reply", "A reply"},
		{"kwyre: service is back", "kwyre: service is back"},
		{"Boot it to chat.inference: time=x msg=chat\n", "Boot it to chat."},
	}
	for _, tc := range tests {
		if got := replyText(tc.in); got != tc.want {
			t.Errorf("replyText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
