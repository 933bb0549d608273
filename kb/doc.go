// Package kb will hold kefu's knowledge base: articles, BM25 search with bleve in Chinese and
// English, and A/B tests of answer scripts. It is built by the knowledge-base issue; nothing
// here yet.
package kb
