package models

import "time"

// The priors read every hour of the day (the hour's found rate, the pick
// hours, the hour shifts, the opening of the shopping day) off times in
// UTC. A marketplace's stores keep their own hours, so a fit and an answer
// first move their times onto the store's clock: by the store's offset
// from UTC at the moment asked about, the same for every time involved, so
// that the UTC hour of a moved time is the store's wall-clock hour and
// every duration between them is unchanged.

// storeClock moves t, and the times of e, by loc's offset from UTC at t. A
// nil loc leaves them as they are.
func storeClock(e AvailabilityEvidence, loc *time.Location, t time.Time) (AvailabilityEvidence, time.Time) {
	if loc == nil {
		return e, t
	}
	_, offset := t.In(loc).Zone()
	d := time.Duration(offset) * time.Second
	for _, at := range []*time.Time{&e.At, &e.FeedAt, &e.CountedAt, &e.LevelSince} {
		if !at.IsZero() {
			*at = at.Add(d)
		}
	}
	return e, t.Add(d)
}

// onStoreClocks returns obs with each observation's times on its store's
// clock (storeClock at the pick), for the fit.
func onStoreClocks(obs []PickObservation) []PickObservation {
	out := make([]PickObservation, len(obs))
	for i, o := range obs {
		o.Evidence, o.At = storeClock(o.Evidence, o.Location, o.At)
		out[i] = o
	}
	return out
}

// answerClock is storeClock for an answer about item at now under priors:
// priors fitted in UTC (LocalHours false) are read in UTC.
func (p AvailabilityPriors) answerClock(e AvailabilityEvidence, item ShelfItem, now time.Time) (AvailabilityEvidence, time.Time) {
	if !p.LocalHours {
		return e, now
	}
	return storeClock(e, item.Location, now)
}
