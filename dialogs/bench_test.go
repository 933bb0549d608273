package dialogs_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/kefu-ai/kefu/conversation"
	"github.com/kefu-ai/kefu/dialogs"
)

var outcomeSink dialogs.Outcome

// BenchmarkStep: one flow step with no action call: a flow started with its first slot
// filled from the message, and a slot filled by an extractor.
func BenchmarkStep(b *testing.B) {
	var fail atomic.Bool
	m := refundMachine(b, &fail)
	now := time.Now()
	b.Run("start", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := conversation.Dialog{}
			outcomeSink = m.Step(b.Context(), &d, dialogs.Input{Text: "refund order KF777777 please", Lang: "en", Intent: "refund", Confidence: 0.9, Now: now, Turn: 1})
		}
	})
	b.Run("slot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := conversation.Dialog{Flow: "refund", State: "ask_order", Slots: map[string]string{}}
			outcomeSink = m.Step(b.Context(), &d, dialogs.Input{Text: "it is KF123456", Lang: "en", Intent: "order_status", Confidence: 0.9, Now: now, Turn: 2})
		}
	})
}
