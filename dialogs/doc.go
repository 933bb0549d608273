// Package dialogs is kefu's bots: the bot bundle (bot.yaml and dialogs/*.yaml, validated
// with file and line), flows of states with slots, prompts and confirmations, entity
// extractors, and HTTP actions. Machine moves a conversation's dialog (conversation.Dialog)
// forward by one understood message; it stores nothing itself. Action calls go through a
// Recorder so that a turn run again makes no call twice.
package dialogs
