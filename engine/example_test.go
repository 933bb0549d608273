package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kefu-ai/kefu/dialogs"
	"github.com/kefu-ai/kefu/engine"
	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/models"
)

// An engine with the demo bot and model, conversations in memory: a greeting is answered
// by a flow; asking for a person hands the conversation off, and the outbox holds the
// delivery for the handoff API.
func ExampleEngine() {
	lib, _ := testenv.ORTLibrary()
	rt, err := models.OpenRuntime(lib)
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	bundle := filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot")
	clf, err := models.Load(rt, filepath.Join(bundle, "model"), models.Config{})
	if err != nil {
		panic(err)
	}
	defer clf.Close()
	bot, err := dialogs.Load(os.DirFS(bundle), ".")
	if err != nil {
		panic(err)
	}
	eng := engine.New(engine.Config{NLU: clf, Bot: dialogs.NewMachine(bot, nil)})
	ctx := context.Background()
	for _, text := range []string{"你好", "I want to talk to a real person"} {
		res, err := eng.Message(ctx, "web:c1", engine.MessageRequest{Text: text, MessageID: fmt.Sprint("m-", len(text))})
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: source %s, intent %s\n", text, res.Source, res.Intent.Name)
		if res.Handoff != nil {
			fmt.Println("handoff:", res.Handoff.Reason, res.Handoff.Status)
		}
	}
	queued, _ := eng.OutboxDepth(ctx)
	fmt.Println("deliveries queued:", queued)
	// Output:
	// 你好: source dialog, intent greeting
	// I want to talk to a real person: source handoff, intent human_agent
	// handoff: requested queued
	// deliveries queued: 1
}
