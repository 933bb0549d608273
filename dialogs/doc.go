// Package dialogs will hold kefu's dialog state machines (flows, slots, prompts) and the state
// store interface with its in-memory and Redis implementations. It is built by the
// conversation-service issue; nothing here yet.
package dialogs
