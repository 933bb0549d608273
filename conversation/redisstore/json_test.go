package redisstore

import (
	stdjson "encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/kefu-ai/kefu/conversation"
)

// TestRecordsReadTheSameWithEncodingJSON: the store encodes with segmentio/encoding/json,
// and nodes of another build (encoding/json) share the Redis. Whatever one writes the other
// reads back as the same conversation, with every field set and with the optional ones zero.
// The bytes are encoding/json's too, except that segmentio has no omitzero: a handoff
// without an SLA deadline carries "deadline":"0001-01-01T00:00:00Z", which reads as zero.
func TestRecordsReadTheSameWithEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 1, 8, 30, 15, 123456789, time.FixedZone("CST", 8*3600))
	full := conversation.New("c-1", at)
	full.Version, full.Lang, full.Channel, full.TokenHash = 7, "zh", "web", "ab12"
	full.Customer = conversation.Customer{ID: "u-9", Tier: "vip"}
	full.Metadata = map[string]string{"page": "/orders?id=1&x=<y>", "b": "2"}
	full.Dialog = conversation.Dialog{Flow: "refund", State: "confirm", Attempts: 1, Slots: map[string]string{"order_id": "KF20261122"}}
	full.Unresolved, full.Clarified, full.LastArticle, full.CSAT, full.Thumb = 1, true, "refund-time", 4, -1
	full.Handoff = &conversation.Handoff{ID: "h-1", Reason: "angry", Priority: "high", Status: "accepted", At: at,
		Queue: "vip", Skills: []string{"zh", "refund"}, Deadline: at.Add(time.Minute), Agent: "李雷", AcceptedAt: at.Add(time.Second), First: true}
	full.AddTurn(conversation.Turn{MessageID: "m1", At: at, Text: "我要退款！\"快\" \\ \u2028 😡", Lang: "zh", Intent: "refund",
		Confidence: 0.9321, Emotion: "angry", EmotionScore: 0.25, Source: "dialog", Replies: []string{"好的", "请稍等"}, State: "ask", Article: "a"})
	full.Remember(conversation.Answer{MessageID: "m1", Digest: "d", Reply: []byte(`{"replies": ["好的"], "n": 1.50}`)})
	full.Outgoing = []stdjson.RawMessage{[]byte(`{"kind":"handoff"}`)}
	empty := conversation.New("c-2", at)
	empty.Handoff = &conversation.Handoff{ID: "h-2", At: at}
	type codec struct {
		name      string
		marshal   func(any) ([]byte, error)
		unmarshal func([]byte, any) error
	}
	codecs := []codec{{"encoding/json", stdjson.Marshal, stdjson.Unmarshal}, {"segmentio", json.Marshal, json.Unmarshal}}
	for name, c := range map[string]*conversation.Conversation{"full": full, "empty": empty} {
		var want conversation.Conversation // as encoding/json reads what it wrote
		b, err := stdjson.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := stdjson.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		for _, w := range codecs {
			for _, r := range codecs {
				b, err := w.marshal(c)
				if err != nil {
					t.Fatal(err)
				}
				var got conversation.Conversation
				if err := r.unmarshal(b, &got); err != nil {
					t.Fatalf("%s: %s cannot read what %s wrote: %v", name, r.name, w.name, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s written by %s, read by %s:\n%+v\nwant\n%+v", name, w.name, r.name, got, want)
				}
			}
		}
		seg, _ := json.Marshal(c)
		std, _ := stdjson.Marshal(c)
		if name == "full" && string(seg) != string(std) {
			t.Errorf("full record: segmentio writes\n%s\nencoding/json\n%s", seg, std)
		}
	}
}
