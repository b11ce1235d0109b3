// Package i18n holds the words Doorstep shows the election committee,
// auditors and residents, in Chinese and in English: one catalogue per
// language (zh.go, en.go), looked up by key. Every committee-facing text
// (CLI headings, the dashboard, the results notice, CSV headers) comes
// from here, so a translation is never missing in one place and present
// in another; a test checks that both catalogues have every key with the
// same formatting verbs.
package i18n

import (
	"fmt"
	"strings"
)

// Lang is a language Doorstep speaks.
type Lang string

const (
	ZH Lang = "zh" // Simplified Chinese, the default for notices
	EN Lang = "en"
)

// Langs lists the languages in the order they are offered.
var Langs = []Lang{ZH, EN}

var catalogues = map[Lang]map[string]string{ZH: zh, EN: en}

// Parse reads a --lang value: "zh" or "en" (also "zh-CN", "en_GB.UTF-8").
func Parse(s string) (Lang, error) {
	if l, ok := match(s); ok {
		return l, nil
	}
	return "", fmt.Errorf("unknown language %q: use zh (中文) or en (English)", s)
}

func match(s string) (Lang, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, l := range Langs {
		if s == string(l) || strings.HasPrefix(s, string(l)+"_") || strings.HasPrefix(s, string(l)+"-") || strings.HasPrefix(s, string(l)+".") {
			return l, true
		}
	}
	return "", false
}

// FromEnv picks the language from the locale (LC_ALL, then LC_MESSAGES,
// then LANG, as POSIX orders them), or fallback when none names one we
// speak.
func FromEnv(getenv func(string) string, fallback Lang) Lang {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(k); v != "" {
			if l, ok := match(v); ok {
				return l
			}
			return fallback // the first one set decides, as in POSIX
		}
	}
	return fallback
}

// FromAcceptLanguage picks the language for a browser's Accept-Language
// header: the first tag we speak, else fallback.
func FromAcceptLanguage(h string, fallback Lang) Lang {
	for _, part := range strings.Split(h, ",") {
		tag, _, _ := strings.Cut(part, ";")
		if l, ok := match(tag); ok {
			return l
		}
	}
	return fallback
}

// T renders key's text in l with args (fmt verbs). A key missing from the
// catalogue renders as the key itself in brackets, visible but harmless;
// the catalogue test keeps that from shipping.
func (l Lang) T(key string, args ...any) string {
	c, ok := catalogues[l]
	if !ok {
		c = zh
	}
	s, ok := c[key]
	if !ok {
		return "[" + key + "]"
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// Has reports whether key is in the catalogues.
func Has(key string) bool { _, ok := zh[key]; return ok }
