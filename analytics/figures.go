package analytics

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Query selects a period [From, To), rounded down to whole hours (UTC), and optionally one
// channel and one language.
type Query struct {
	From, To      time.Time
	Channel, Lang string
}

// Summary is the service's figures over a period. Rates are null when nothing was there to
// divide.
type Summary struct {
	From          time.Time `json:"from" required:"true"`
	To            time.Time `json:"to" required:"true"`
	Conversations int64     `json:"conversations" required:"true" doc:"conversations that started (first customer message)"`
	Messages      int64     `json:"messages" required:"true" doc:"customer messages"`
	Ended         int64     `json:"ended" required:"true" doc:"conversations that ended: closed, erased, or idle for --state-ttl"`
	AutoResolved  int64     `json:"auto_resolved" required:"true" doc:"ended conversations without a handoff whose last customer message was resolved by a dialog or the KB"`
	// AutoResolutionRate = AutoResolved / Ended.
	AutoResolutionRate *float64 `json:"auto_resolution_rate" required:"true" nullable:"true" doc:"auto_resolved / ended"`
	Handoffs           int64    `json:"handoffs" required:"true"`
	HandedOff          int64    `json:"handed_off_conversations" required:"true" doc:"conversations handed off for the first time"`
	// HandoffRate = HandedOff / Conversations.
	HandoffRate     *float64                 `json:"handoff_rate" required:"true" nullable:"true" doc:"handed_off_conversations / conversations"`
	HandoffReasons  map[string]int64         `json:"handoff_reasons" required:"true"`
	HandoffQueues   map[string]int64         `json:"handoff_queues" required:"true"`
	HandoffPriority map[string]int64         `json:"handoff_priorities" required:"true"`
	Released        int64                    `json:"released" required:"true" doc:"conversations agents gave back to the bot"`
	CSAT            CSAT                     `json:"csat" required:"true"`
	BotResponseMS   Quantiles                `json:"bot_response_ms" required:"true" doc:"server-side time to answer a message the bot answered"`
	TimeToAgentS    map[string]Quantiles     `json:"time_to_agent_s" required:"true" doc:"priority → handoff to agent.accepted, in seconds"`
	SLA             map[string]SLA           `json:"sla" required:"true" doc:"priority → handoffs accepted within their target (met) or not (breached)"`
	Sources         map[string]int64         `json:"sources" required:"true" doc:"messages by what answered them: dialog, kb, clarify, handoff, agent"`
	Intents         []IntentCount            `json:"intents" required:"true" doc:"the 20 most frequent intents of messages the bot read"`
	NegativeShare   *float64                 `json:"negative_emotion_share" required:"true" nullable:"true" doc:"share of messages read with one of the policy's negative emotions"`
	KBAsked         int64                    `json:"kb_asked" required:"true" doc:"messages no dialog took, asked of the KB"`
	KBAnswered      int64                    `json:"kb_answered" required:"true"`
	KBAnswerRate    *float64                 `json:"kb_answer_rate" required:"true" nullable:"true" doc:"kb_answered / kb_asked"`
	Channels        map[string]int64         `json:"channels" required:"true" doc:"messages by channel (\"-\": none given, \"other\": past the first 32 names)"`
	counters        map[string]int64         // metric → total, for Series
	waits           map[string]map[int]int64 // priority → histogram
}

// CSAT is the satisfaction scores given.
type CSAT struct {
	Responses int64 `json:"responses" required:"true"`
	// Mean of the scores (1–5); SatisfiedRate is the share of 4 and 5.
	Mean          *float64         `json:"mean" required:"true" nullable:"true"`
	SatisfiedRate *float64         `json:"satisfied_rate" required:"true" nullable:"true" doc:"share of scores 4 and 5"`
	Scores        map[string]int64 `json:"scores" required:"true" doc:"score → responses"`
}

// Quantiles of a distribution; null when it is empty.
type Quantiles struct {
	Count int64    `json:"count" required:"true"`
	P50   *float64 `json:"p50" required:"true" nullable:"true"`
	P95   *float64 `json:"p95" required:"true" nullable:"true"`
}

// SLA counts handoffs accepted within their target and those that were not.
type SLA struct {
	Met      int64 `json:"met" required:"true"`
	Breached int64 `json:"breached" required:"true"`
}

// IntentCount is how often an intent was read.
type IntentCount struct {
	Intent string `json:"intent" required:"true"`
	Count  int64  `json:"count" required:"true"`
}

// Buckets names the buckets that add up to [from, to) (both rounded down to the hour): day
// buckets for whole UTC days, hour buckets at the edges.
func Buckets(from, to time.Time) []string {
	from, to = from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
	var out []string
	for t := from; t.Before(to); {
		if t.Hour() == 0 && !t.Add(24*time.Hour).After(to) {
			out = append(out, DayBucket(t))
			t = t.Add(24 * time.Hour)
		} else {
			out = append(out, HourBucket(t))
			t = t.Add(time.Hour)
		}
	}
	return out
}

// Summarize adds up q's period.
func Summarize(ctx context.Context, s Store, q Query) (*Summary, error) {
	q.From, q.To = q.From.UTC().Truncate(time.Hour), q.To.UTC().Truncate(time.Hour)
	sums, err := s.Counters(ctx, [][]string{Buckets(q.From, q.To)})
	if err != nil {
		return nil, err
	}
	return summarize(q, sums[0]), nil
}

// summarize reads the figures off fields, the period's counters added up.
func summarize(q Query, fields map[string]int64) *Summary {
	sum := &Summary{From: q.From, To: q.To, HandoffReasons: map[string]int64{}, HandoffQueues: map[string]int64{}, HandoffPriority: map[string]int64{},
		TimeToAgentS: map[string]Quantiles{}, SLA: map[string]SLA{}, Sources: map[string]int64{}, Intents: []IntentCount{},
		Channels: map[string]int64{}, CSAT: CSAT{Scores: map[string]int64{}}, counters: map[string]int64{}, waits: map[string]map[int]int64{}}
	c := sum.counters
	for f, n := range fields {
		ch, lang, metric, ok := splitField(f)
		if !ok || q.Channel != "" && ch != q.Channel || q.Lang != "" && lang != q.Lang {
			continue
		}
		c[metric] += n
		if metric == mMessages {
			sum.Channels[ch] += n
		}
	}
	response := map[int]int64{}
	intents := map[string]int64{}
	for m, n := range c {
		switch {
		case strings.HasPrefix(m, mReason):
			sum.HandoffReasons[m[len(mReason):]] += n
		case strings.HasPrefix(m, mQueue):
			sum.HandoffQueues[m[len(mQueue):]] += n
		case strings.HasPrefix(m, mPriority):
			sum.HandoffPriority[m[len(mPriority):]] += n
		case strings.HasPrefix(m, mSource):
			sum.Sources[m[len(mSource):]] += n
		case strings.HasPrefix(m, mIntent):
			intents[m[len(mIntent):]] += n
		case strings.HasPrefix(m, mResponse):
			if i, err := strconv.Atoi(m[len(mResponse):]); err == nil {
				response[i] += n
			}
		case strings.HasPrefix(m, mWait):
			p, i, ok := strings.Cut(m[len(mWait):], ".")
			if k, err := strconv.Atoi(i); ok && err == nil {
				if sum.waits[p] == nil {
					sum.waits[p] = map[int]int64{}
				}
				sum.waits[p][k] += n
			}
		case strings.HasPrefix(m, mSLA):
			p, what, _ := strings.Cut(m[len(mSLA):], ".")
			v := sum.SLA[p]
			if what == "met" {
				v.Met += n
			} else if what == "breached" {
				v.Breached += n
			}
			sum.SLA[p] = v
		case m == mCSATCount || m == mCSATSum:
		case strings.HasPrefix(m, mCSATScore):
			if n != 0 {
				sum.CSAT.Scores[m[len(mCSATScore):]] += n
			}
		}
	}
	sum.Conversations, sum.Messages, sum.Ended, sum.AutoResolved = c[mConversations], c[mMessages], c[mEnded], c[mAuto]
	sum.Handoffs, sum.HandedOff, sum.Released = c[mHandoffs], c[mHandedOff], c[mReleased]
	sum.KBAsked, sum.KBAnswered = c[mKBAsked], c[mKBAnswered]
	sum.AutoResolutionRate = ratio(sum.AutoResolved, sum.Ended)
	sum.HandoffRate = ratio(sum.HandedOff, sum.Conversations)
	sum.KBAnswerRate = ratio(sum.KBAnswered, sum.KBAsked)
	read := sum.Messages - sum.Sources["agent"]
	sum.NegativeShare = ratio(c[mNegative], read)
	sum.CSAT.Responses = c[mCSATCount]
	sum.CSAT.Mean = ratio(c[mCSATSum], c[mCSATCount])
	sum.CSAT.SatisfiedRate = ratio(sum.CSAT.Scores["4"]+sum.CSAT.Scores["5"], c[mCSATCount])
	sum.BotResponseMS = quantiles(responseBounds, response)
	for p, h := range sum.waits {
		sum.TimeToAgentS[p] = quantiles(waitBounds, h)
	}
	for name, n := range intents {
		sum.Intents = append(sum.Intents, IntentCount{Intent: name, Count: n})
	}
	slices.SortFunc(sum.Intents, func(a, b IntentCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Intent, b.Intent))
	})
	sum.Intents = sum.Intents[:min(len(sum.Intents), 20)]
	return sum
}

func ratio(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	r := float64(a) / float64(b)
	return &r
}

// quantiles reads p50 and p95 from a histogram over bounds, interpolating linearly within
// the bucket the quantile falls in (the open last bucket answers its lower bound).
func quantiles(bounds []float64, h map[int]int64) Quantiles {
	var n int64
	for _, c := range h {
		n += c
	}
	out := Quantiles{Count: n}
	if n == 0 {
		return out
	}
	at := func(q float64) *float64 {
		rank := q * float64(n)
		var seen int64
		for i := 0; i <= len(bounds); i++ {
			c := h[i]
			if c == 0 || float64(seen+c) < rank {
				seen += c
				continue
			}
			lo := 0.0
			if i > 0 {
				lo = bounds[i-1]
			}
			if i == len(bounds) {
				return &lo
			}
			v := lo + (bounds[i]-lo)*(rank-float64(seen))/float64(c)
			v = float64(int64(v*1000+0.5)) / 1000
			return &v
		}
		v := bounds[len(bounds)-1]
		return &v
	}
	out.P50, out.P95 = at(0.5), at(0.95)
	return out
}

// Metrics are what Series can chart.
var Metrics = []string{"conversations", "messages", "ended", "auto_resolved", "auto_resolution_rate", "handoffs", "handoff_rate",
	"csat_responses", "csat_mean", "csat_satisfied_rate", "bot_response_ms_p50", "bot_response_ms_p95", "kb_answer_rate",
	"negative_emotion_share", "sla_met", "sla_breached"}

// Point is one bucket of a series; Value is null when the bucket had nothing to divide.
type Point struct {
	At    time.Time `json:"at" required:"true"`
	Value *float64  `json:"value" required:"true" nullable:"true"`
}

// Series is one metric per hour or day.
type Series struct {
	Metric string  `json:"metric" required:"true"`
	Bucket string  `json:"bucket" required:"true" enum:"hour,day"`
	Points []Point `json:"points" required:"true"`
}

// Chart reads metric per bucket ("hour" or "day", UTC days) over q's period; the caller
// checks metric and bucket against Metrics.
func Chart(ctx context.Context, s Store, q Query, metric, bucket string) (*Series, error) {
	step := time.Hour
	from := q.From.UTC().Truncate(time.Hour)
	if bucket == "day" {
		step = 24 * time.Hour
		from = from.Truncate(24 * time.Hour)
	}
	var starts []time.Time
	var groups [][]string
	for t := from; t.Before(q.To); t = t.Add(step) {
		end := t.Add(step)
		if end.After(q.To) {
			end = q.To
		}
		start := t
		if start.Before(q.From) {
			start = q.From
		}
		starts, groups = append(starts, t), append(groups, Buckets(start, end))
	}
	sums, err := s.Counters(ctx, groups)
	if err != nil {
		return nil, err
	}
	out := &Series{Metric: metric, Bucket: bucket, Points: []Point{}}
	for k, t := range starts {
		sum := summarize(Query{From: t, To: t.Add(step), Channel: q.Channel, Lang: q.Lang}, sums[k])
		out.Points = append(out.Points, Point{At: t, Value: sum.metric(metric)})
	}
	return out, nil
}

func (s *Summary) metric(name string) *float64 {
	n := func(v int64) *float64 { f := float64(v); return &f }
	var met, breached int64
	for _, v := range s.SLA {
		met, breached = met+v.Met, breached+v.Breached
	}
	switch name {
	case "conversations":
		return n(s.Conversations)
	case "messages":
		return n(s.Messages)
	case "ended":
		return n(s.Ended)
	case "auto_resolved":
		return n(s.AutoResolved)
	case "auto_resolution_rate":
		return s.AutoResolutionRate
	case "handoffs":
		return n(s.Handoffs)
	case "handoff_rate":
		return s.HandoffRate
	case "csat_responses":
		return n(s.CSAT.Responses)
	case "csat_mean":
		return s.CSAT.Mean
	case "csat_satisfied_rate":
		return s.CSAT.SatisfiedRate
	case "bot_response_ms_p50":
		return s.BotResponseMS.P50
	case "bot_response_ms_p95":
		return s.BotResponseMS.P95
	case "kb_answer_rate":
		return s.KBAnswerRate
	case "negative_emotion_share":
		return s.NegativeShare
	case "sla_met":
		return n(met)
	case "sla_breached":
		return n(breached)
	}
	return nil
}

// Question is a group of customer messages nothing answered: the same words once case,
// spaces and punctuation are set aside, or most of the same salient terms (see clusters).
type Question struct {
	Text     string         `json:"text" required:"true" doc:"the group's most recent wording"`
	Lang     string         `json:"lang" required:"true"`
	Count    int64          `json:"count" required:"true"`
	Last     time.Time      `json:"last" required:"true"`
	Sources  map[string]int `json:"sources" required:"true" doc:"clarify, handoff:low_confidence, handoff:unresolved → messages"`
	Intents  map[string]int `json:"intents" required:"true" doc:"what the model read, → messages"`
	Examples []Example      `json:"examples" required:"true" doc:"up to 5 of the group's messages, latest first"`
	Terms    []string       `json:"terms" required:"true" doc:"the salient terms at least half its messages share"`
}

// Example is one message of a Question.
type Example struct {
	Conversation string    `json:"conversation" required:"true"`
	At           time.Time `json:"at" required:"true"`
	Text         string    `json:"text" required:"true"`
}

// Unanswered is what customers asked that nothing answered over a period.
type Unanswered struct {
	From      time.Time  `json:"from" required:"true"`
	To        time.Time  `json:"to" required:"true"`
	Messages  int64      `json:"messages" required:"true"`
	Questions []Question `json:"questions" required:"true" doc:"groups, the most frequent first"`
}

// Unanswer groups q's unanswered messages; at most limit groups.
func Unanswer(ctx context.Context, s Store, q Query, limit int) (*Unanswered, error) {
	q.From, q.To = q.From.UTC().Truncate(time.Hour), q.To.UTC().Truncate(time.Hour)
	out := &Unanswered{From: q.From, To: q.To, Questions: []Question{}}
	var c clusters
	err := s.Lines(ctx, Questions, q.From, q.To, func(l Line) error {
		var ev Event
		if json.Unmarshal(l.JSON, &ev) != nil || q.Channel != "" && ev.Channel != q.Channel || q.Lang != "" && ev.Lang != q.Lang {
			return nil
		}
		out.Messages++
		g := c.group(ev.Lang, ev.Text)
		g.Count++
		if !ev.At.Before(g.Last) {
			g.Last, g.Text = ev.At, ev.Text
		}
		src := ev.Source
		if ev.Reason != "" {
			src += ":" + ev.Reason
		}
		g.Sources[src]++
		if ev.Intent != "" {
			g.Intents[ev.Intent]++
		}
		g.Examples = append(g.Examples, Example{Conversation: ev.Conversation, At: ev.At, Text: ev.Text})
		return nil
	})
	if err != nil {
		return nil, err
	}
	groups := c.all
	for _, g := range groups {
		g.Terms = c.terms(g)
		slices.SortFunc(g.Examples, func(a, b Example) int { return b.At.Compare(a.At) })
		g.Examples = g.Examples[:min(5, len(g.Examples))]
		out.Questions = append(out.Questions, *g)
	}
	slices.SortFunc(out.Questions, func(a, b Question) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), b.Last.Compare(a.Last), cmp.Compare(a.Text, b.Text))
	})
	out.Questions = out.Questions[:min(limit, len(out.Questions))]
	return out, nil
}

// clusters groups unanswered messages: the same words (case, spaces, punctuation, emoji
// aside) are one group; otherwise a message joins the first group of its language whose
// first message shares most of its salient terms (Jaccard ≥ 0.6), or starts one. Salient
// terms are the Chinese characters and the English words (plural and -ing/-ed forms
// folded) left once function words are set aside: "你们有学生折扣吗" and "学生打折吗" share
// 学, 生, 折; "is bitcoin accepted" and "do you accept bitcoin?" share accept, bitcoin.
type clusters struct {
	all   []*Question
	exact map[string]*Question
	first map[*Question]map[string]bool // the salient terms of a group's first message
	by    map[string][]*Question        // lang+term → the groups whose first message has it
	seen  map[*Question][]map[string]bool
}

func (c *clusters) group(lang, text string) *Question {
	if c.exact == nil {
		c.exact, c.first, c.by, c.seen = map[string]*Question{}, map[*Question]map[string]bool{}, map[string][]*Question{}, map[*Question][]map[string]bool{}
	}
	key := lang + "\x00" + normalize(text)
	if g := c.exact[key]; g != nil {
		return g
	}
	terms := salient(text)
	var best *Question
	bestScore := 0.0
	counted := map[*Question]int{}
	for t := range terms {
		for _, g := range c.by[lang+"\x00"+t] {
			counted[g]++
		}
	}
	for g, shared := range counted {
		if score := float64(shared) / float64(len(terms)+len(c.first[g])-shared); score >= 0.6 && score > bestScore {
			best, bestScore = g, score
		}
	}
	if best == nil {
		best = &Question{Lang: lang, Sources: map[string]int{}, Intents: map[string]int{}}
		c.all = append(c.all, best)
		c.first[best] = terms
		for t := range terms {
			c.by[lang+"\x00"+t] = append(c.by[lang+"\x00"+t], best)
		}
	}
	c.exact[key] = best
	c.seen[best] = append(c.seen[best], terms)
	return best
}

// terms are the salient terms at least half of g's messages share, sorted.
func (c *clusters) terms(g *Question) []string {
	n := map[string]int{}
	for _, ts := range c.seen[g] {
		for t := range ts {
			n[t]++
		}
	}
	out := []string{}
	for t, k := range n {
		if 2*k >= len(c.seen[g]) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// functionChars are Chinese characters that carry little of what a question is about.
const functionChars = "你您我他她它们的了吗呢吧啊呀哦嘛么是不没有在这那个些什怎样如何请问能可以会要想就都也还和与及或把被给让对于从到为"

var stopWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields("a an the is are was were be been am do does did i you we they he she it my your our their me us them this that these those of to in on at for with by from and or but not no can could will would shall should may might must have has had there here what when where which who whom how why if then so as about any some please hi hello") {
		stopWords[w] = true
	}
}

// salient is text's salient terms (see clusters).
func salient(text string) map[string]bool {
	terms := map[string]bool{}
	var word []rune
	flush := func() {
		if len(word) > 0 {
			w := strings.ToLower(string(word))
			if !stopWords[w] {
				for _, suffix := range []string{"ing", "ed", "es", "s"} {
					if len(w) > len(suffix)+3 && strings.HasSuffix(w, suffix) {
						w = strings.TrimSuffix(w, suffix)
						break
					}
				}
				terms[w] = true
			}
			word = word[:0]
		}
	}
	for _, r := range text {
		switch {
		case unicode.Is(unicode.Han, r):
			flush()
			if !strings.ContainsRune(functionChars, r) {
				terms[string(r)] = true
			}
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			word = append(word, r)
		default:
			flush()
		}
	}
	flush()
	return terms
}

// normalize is text without case, spaces, punctuation and symbols (emoji), for grouping.
func normalize(text string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, text)
}

// Export writes the events of [from, to) to w, one JSON object per line, oldest first (on
// Redis: in the order Redis received them); it returns how many it wrote.
func Export(ctx context.Context, s Store, from, to time.Time, w io.Writer) (int, error) {
	n := 0
	err := s.Lines(ctx, Events, from, to, func(l Line) error {
		if _, err := w.Write(append(l.JSON, '\n')); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// ParseTime reads a period's end: an RFC 3339 time, or a date (UTC midnight).
func ParseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-12-01T08:00:00+08:00) or a date (2026-12-01), got %q", v)
}
