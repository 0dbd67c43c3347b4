package aisle

// Origin says where an event was read from. The entity state an event
// changes keeps the offset of the last record applied from its partition,
// which makes a redelivery or a replay of applied records a no-op.
type Origin struct {
	Topic string // "" for events that did not come from Kafka: dedup by event id only
	// TopicID is the broker's id of the topic (hex), if known. It is part of
	// the watermark, so a deleted and recreated topic (whose offsets restart
	// at 0, e.g. after wiping the embedded broker's data) is not mistaken
	// for a replay.
	TopicID   string
	Partition int32
	Offset    int64
}

// Update is one decoded event to apply, with where it was read from: what
// the stream hands its appliers.
type Update struct {
	Event  *Decoded
	Origin Origin
}
