package dialogs

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// extractor finds a slot value in a customer's message; now anchors relative dates.
type extractor func(text string, now time.Time) (string, bool)

// Extract runs the named entity's extractor (built-in or the bot's own) on text.
func (b *Bot) Extract(entity, text string, now time.Time) (string, bool) {
	x, ok := b.extractors[entity]
	if !ok {
		return "", false
	}
	return x(text, now)
}

// builtins are the extractors every bot has.
var builtins = map[string]extractor{
	"order_number": orderNumber,
	"phone":        phone,
	"email":        email,
	"amount":       amount,
	"date":         date,
	"text":         freeText,
}

func (b *Bot) compileEntities(file string, data []byte) error {
	root := parseNode(data)
	b.extractors = map[string]extractor{}
	for n, x := range builtins {
		b.extractors[n] = x
	}
	for name, e := range b.Entities {
		line := lineOf(root, "entities", name)
		if _, ok := builtins[name]; ok {
			return &Error{File: file, Line: line, Msg: fmt.Sprintf("entity %s: the name is a built-in", name)}
		}
		switch {
		case e.Regex != "" && e.Lookup == nil:
			re, err := regexp.Compile(e.Regex)
			if err != nil {
				return &Error{File: file, Line: line, Msg: fmt.Sprintf("entity %s: bad regex: %v", name, err)}
			}
			b.extractors[name] = regexExtractor(re)
		case e.Lookup != nil && e.Regex == "":
			if len(e.Lookup) == 0 {
				return &Error{File: file, Line: line, Msg: fmt.Sprintf("entity %s: empty lookup", name)}
			}
			b.extractors[name] = lookupExtractor(e.Lookup)
		default:
			return &Error{File: file, Line: line, Msg: fmt.Sprintf("entity %s: give either regex or lookup", name)}
		}
	}
	return nil
}

func regexExtractor(re *regexp.Regexp) extractor {
	return func(text string, _ time.Time) (string, bool) {
		m := re.FindStringSubmatch(text)
		switch {
		case m == nil:
			return "", false
		case len(m) > 1 && m[1] != "":
			return m[1], true
		default:
			return m[0], true
		}
	}
}

// lookupExtractor finds the value whose name or synonym occurs in the text (case-folded);
// the longest occurrence wins.
func lookupExtractor(lookup map[string][]string) extractor {
	type syn struct{ phrase, value string }
	var syns []syn
	for v, list := range lookup {
		syns = append(syns, syn{strings.ToLower(v), v})
		for _, s := range list {
			if s = strings.TrimSpace(strings.ToLower(s)); s != "" {
				syns = append(syns, syn{s, v})
			}
		}
	}
	sort.Slice(syns, func(i, j int) bool {
		if len(syns[i].phrase) != len(syns[j].phrase) {
			return len(syns[i].phrase) > len(syns[j].phrase)
		}
		return syns[i].phrase < syns[j].phrase
	})
	return func(text string, _ time.Time) (string, bool) {
		t := strings.ToLower(text)
		for _, s := range syns {
			if strings.Contains(t, s.phrase) {
				return s.value, true
			}
		}
		return "", false
	}
}

var (
	orderRe  = regexp.MustCompile(`(?i)(?:^|[^A-Za-z0-9])([A-Za-z]{1,4}-?\d{5,20}|\d{8,20})(?:$|[^A-Za-z0-9])`)
	cnPhone  = regexp.MustCompile(`(?:^|[^\d+])(?:\+?86[ -]?)?(1[3-9]\d[ -]?\d{4}[ -]?\d{4})(?:$|\D)`)
	intPhone = regexp.MustCompile(`\+(\d{1,3})[ -]?(\d[\d -]{5,14}\d)`)
	emailRe  = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
)

// orderNumber: letters (at most 4) then 5–20 digits, or 8–20 digits; upper-cased, without
// the dash. A Chinese mobile number is not an order number.
func orderNumber(text string, _ time.Time) (string, bool) {
	for _, m := range orderRe.FindAllStringSubmatch(text, -1) {
		v := strings.ToUpper(strings.ReplaceAll(m[1], "-", ""))
		if len(v) == 11 && v[0] == '1' && v[1] >= '3' && v[1] <= '9' && isDigits(v) {
			continue
		}
		return v, true
	}
	return "", false
}

// phone: a Chinese mobile number (+86 optional) as +86 and 11 digits, or an international
// number with a + prefix as + and digits.
func phone(text string, _ time.Time) (string, bool) {
	if m := intPhone.FindStringSubmatch(text); m != nil && m[1] != "86" {
		return "+" + m[1] + digitsOnly(m[2]), true
	}
	if m := cnPhone.FindStringSubmatch(text); m != nil {
		return "+86" + digitsOnly(m[1]), true
	}
	return "", false
}

func email(text string, _ time.Time) (string, bool) {
	m := emailRe.FindString(text)
	return strings.ToLower(m), m != ""
}

var (
	amountBefore = regexp.MustCompile(`(?i)(¥|￥|\$|US\$|USD|CNY|RMB)\s?(\d+(?:,\d{3})*(?:\.\d{1,2})?)`)
	amountAfter  = regexp.MustCompile(`(?i)(\d+(?:,\d{3})*(?:\.\d{1,2})?)\s?(元|块钱|块|美元|美金|人民币|dollars?|bucks|usd|yuan|rmb|cny)`)
	amountHan    = regexp.MustCompile(`([零一二两三四五六七八九十百千万]+)(元|块钱|块|美元)`)
)

// amount: a number with a currency sign or word, as "123.45 CNY" or "20 USD"; Chinese
// numerals (三百五十元) are read too.
func amount(text string, _ time.Time) (string, bool) {
	if m := amountBefore.FindStringSubmatch(text); m != nil {
		return formatAmount(m[2], m[1])
	}
	if m := amountAfter.FindStringSubmatch(text); m != nil {
		return formatAmount(m[1], m[2])
	}
	if m := amountHan.FindStringSubmatch(text); m != nil {
		if n, ok := hanNumber(m[1]); ok {
			return formatAmount(strconv.Itoa(n), m[2])
		}
	}
	return "", false
}

func formatAmount(num, unit string) (string, bool) {
	v, err := strconv.ParseFloat(strings.ReplaceAll(num, ",", ""), 64)
	if err != nil {
		return "", false
	}
	cur := "CNY"
	switch strings.ToLower(unit) {
	case "$", "us$", "usd", "美元", "美金", "dollar", "dollars", "bucks":
		cur = "USD"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + cur, true
}

// hanNumber reads Chinese numerals up to 万 (三百五十, 两千零八, 十二).
func hanNumber(s string) (int, bool) {
	digit := map[rune]int{'零': 0, '一': 1, '二': 2, '两': 2, '三': 3, '四': 4, '五': 5, '六': 6, '七': 7, '八': 8, '九': 9}
	unit := map[rune]int{'十': 10, '百': 100, '千': 1000}
	total, section, d := 0, 0, -1
	for _, r := range s {
		switch {
		case r == '万':
			if d >= 0 {
				section += d
			}
			total += section * 10000
			section, d = 0, -1
		case unit[r] > 0:
			if d < 0 {
				d = 1
			}
			section += d * unit[r]
			d = -1
		default:
			v, ok := digit[r]
			if !ok {
				return 0, false
			}
			d = v
		}
	}
	if d > 0 {
		section += d
	}
	return total + section, total+section > 0
}

var (
	isoDate   = regexp.MustCompile(`(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})`)
	hanDate   = regexp.MustCompile(`(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号]`)
	monthName = `(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?`
	enDateMD  = regexp.MustCompile(`(?i)\b` + monthName + `\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?\b`)
	enDateDM  = regexp.MustCompile(`(?i)\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?` + monthName + `(?:,?\s+(\d{4}))?\b`)
	months    = map[string]time.Month{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12}
	relative  = []struct {
		word string
		days int
	}{{"大后天", 3}, {"后天", 2}, {"明天", 1}, {"今天", 0}, {"昨天", -1}, {"前天", -2},
		{"day after tomorrow", 2}, {"tomorrow", 1}, {"today", 0}, {"yesterday", -1}}
)

// date: ISO (2026-11-22), Chinese (11月22日, 2026年11月22日), English (Nov 22, 22 November
// 2026) and relative words (今天, 明天, yesterday…), as YYYY-MM-DD. A date without a year is
// in now's year.
func date(text string, now time.Time) (string, bool) {
	ymd := func(y, m, d int) (string, bool) {
		t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
		if m < 1 || m > 12 || d < 1 || t.Day() != d {
			return "", false
		}
		return t.Format("2006-01-02"), true
	}
	atoi := func(s string, def int) int {
		if v, err := strconv.Atoi(s); err == nil {
			return v
		}
		return def
	}
	if m := isoDate.FindStringSubmatch(text); m != nil {
		return ymd(atoi(m[1], 0), atoi(m[2], 0), atoi(m[3], 0))
	}
	if m := hanDate.FindStringSubmatch(text); m != nil {
		return ymd(atoi(m[1], now.Year()), atoi(m[2], 0), atoi(m[3], 0))
	}
	if m := enDateMD.FindStringSubmatch(text); m != nil {
		return ymd(atoi(m[3], now.Year()), int(months[strings.ToLower(strings.TrimSuffix(m[1], "."))]), atoi(m[2], 0))
	}
	if m := enDateDM.FindStringSubmatch(text); m != nil {
		return ymd(atoi(m[3], now.Year()), int(months[strings.ToLower(m[2])]), atoi(m[1], 0))
	}
	lower := strings.ToLower(text)
	for _, r := range relative {
		if strings.Contains(lower, r.word) {
			return now.AddDate(0, 0, r.days).Format("2006-01-02"), true
		}
	}
	return "", false
}

// freeText takes the whole message (an address, a reason), at most 500 characters.
func freeText(text string, _ time.Time) (string, bool) {
	t := strings.TrimSpace(text)
	if utf8.RuneCountInString(t) > 500 {
		t = string([]rune(t)[:500])
	}
	return t, t != ""
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}
