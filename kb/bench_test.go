package kb

import (
	"context"
	"testing"
)

var hitsSink []Hit

// BenchmarkSearch: top-10 BM25 search of the bundled KB, one sub-benchmark per language.
func BenchmarkSearch(b *testing.B) {
	k := openBundle(b)
	for _, tc := range []struct {
		lang    string
		queries []string
	}{
		{"zh", []string{"退款多久能到账", "怎么修改收货地址", "可以开发票吗", "快递到哪了", "会员积分怎么用"}},
		{"en", []string{"how long does a refund take", "change my delivery address", "can I get an invoice", "where is my parcel", "how do points work"}},
	} {
		b.Run(tc.lang, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.queries[0])))
			i := 0
			for b.Loop() {
				q := tc.queries[i%len(tc.queries)]
				h, err := k.Search(context.Background(), q, tc.lang, 10)
				if err != nil {
					b.Fatal(err)
				}
				hitsSink = h
				i++
			}
		})
	}
}
