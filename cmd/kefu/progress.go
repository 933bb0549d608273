package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar returns a function that redraws a bar for total items on w, or nil when w is
// not a terminal or $CI is set: logs get no carriage returns.
func progressBar(w io.Writer, label string, total int) func(done int) {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("CI") != "" || os.Getenv("TERM") == "dumb" || total <= 0 {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	start := time.Now()
	return func(done int) {
		fmt.Fprint(f, renderBar(label, done, total, time.Since(start)))
		if done >= total {
			fmt.Fprintln(f)
		}
	}
}

// renderBar draws "\rlabel [#####-----] done/total  12.3s".
func renderBar(label string, done, total int, took time.Duration) string {
	const width = 30
	filled := min(width, width*done/total)
	return fmt.Sprintf("\r%-9s [%s%s] %d/%d %5.1fs", label, strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, total, took.Seconds())
}
