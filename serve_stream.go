package main

import (
	"github.com/aisle/aisle/pipeline"
	"github.com/aisle/aisle/streaming"
)

// startStream starts the stream workers when this process runs them
// (--role all or stream): one consumer of every event topic applying the
// pipeline's steps. It returns nil otherwise.
func (m *Main) startStream(deps *dependencies, w *workers) (*streaming.Consumer, error) {
	if !m.runsStream() {
		return nil, nil
	}
	c := &m.Config
	consumer, err := streaming.NewConsumer(streaming.ConsumerConfig{
		Brokers:        deps.brokers,
		Group:          c.ConsumerGroup,
		SessionTimeout: c.SessionTimeout,
		StallThreshold: c.StallThreshold,
		Appliers:       pipeline.Stream(deps.features, deps.db, m.Log),
		Catalog:        deps.db,
		DLQ:            deps.producer,
		Log:            m.Log,
	})
	if err != nil {
		return nil, err
	}
	w.Go("stream consumer", consumer.Run)
	return consumer, nil
}
