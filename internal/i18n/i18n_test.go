package i18n

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

var verb = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?[a-zA-Z%]`)

// TestCatalogues: both languages have every key, with the same verbs in the
// same order, so no text is missing or mis-formatted in either language.
func TestCatalogues(t *testing.T) {
	for _, l := range Langs {
		for _, m := range Langs {
			for k := range catalogues[l] {
				if _, ok := catalogues[m][k]; !ok {
					t.Errorf("key %q is in %s but not in %s", k, l, m)
				}
			}
		}
	}
	for k, z := range zh {
		e, ok := en[k]
		if !ok {
			continue
		}
		if zv, ev := verb.FindAllString(z, -1), verb.FindAllString(e, -1); !slices.Equal(zv, ev) {
			t.Errorf("key %q: zh has verbs %v, en has %v", k, zv, ev)
		}
		if strings.TrimSpace(z) == "" || strings.TrimSpace(e) == "" {
			t.Errorf("key %q has an empty text", k)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Lang
		ok   bool
	}{
		{"zh", ZH, true}, {"en", EN, true}, {"zh-CN", ZH, true}, {"en_GB.UTF-8", EN, true}, {"ZH", ZH, true},
		{"fr", "", false}, {"", "", false}, {"english", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("Parse(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Lang
	}{
		{"none", nil, ZH},
		{"lang", map[string]string{"LANG": "en_US.UTF-8"}, EN},
		{"lc_all wins", map[string]string{"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, ZH},
		{"first set decides", map[string]string{"LC_ALL": "C", "LANG": "en_US.UTF-8"}, ZH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromEnv(func(k string) string { return tc.env[k] }, ZH); got != tc.want {
				t.Errorf("FromEnv = %q, want %q", got, tc.want)
			}
		})
	}
	if got := FromAcceptLanguage("fr-FR, en-US;q=0.8, zh;q=0.5", ZH); got != EN {
		t.Errorf("FromAcceptLanguage = %q, want en", got)
	}
}

func TestT(t *testing.T) {
	if got := EN.T("state.open"); got != "open" {
		t.Errorf("EN.T = %q", got)
	}
	if got := ZH.T("no.such.key"); got != "[no.such.key]" {
		t.Errorf("missing key renders %q", got)
	}
}
