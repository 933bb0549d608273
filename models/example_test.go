package models_test

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/kefu-ai/kefu/internal/testenv"
	"github.com/kefu-ai/kefu/models"
)

// A classifier serves a model bundle (model.onnx, tokenizer.json, model.json) on ONNX
// Runtime: each text gets every head's label with its confidence. Here the demo bot's
// bilingual model reads an order question and a refund request.
func ExampleClassifier() {
	lib, err := testenv.ORTLibrary() // in a program: the path of libonnxruntime.so
	if err != nil {
		panic(err)
	}
	rt, err := models.OpenRuntime(lib)
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	clf, err := models.Load(rt, filepath.Join(testenv.RepoRoot(), "cmd", "kefu", "bot", "model"), models.Config{})
	if err != nil {
		panic(err)
	}
	defer clf.Close()
	res, err := clf.Classify(context.Background(), []string{"我的订单到哪了？", "I want a refund for my broken headphones"})
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		intent, _ := r.Head("intent")
		fmt.Println(intent.Label, intent.Confidence > 0.5)
	}
	// Output:
	// order_status true
	// refund true
}
