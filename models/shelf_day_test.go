package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// Finding (issue 18, the eval targets): a not-found followed within
// confirmWindow by a found pick was counted as a shopper's miss, although
// a midday delivery in between refills an empty shelf; the miss rate came
// out above the shoppers' (4.3% on seed 4, of about 3%), and every
// answer was divided by too much. A pick is confirmed on the shelf only
// between two found picks less than confirmWindow apart.
func TestShopperMissNeedsAFoundPickOnEachSide(t *testing.T) {
	t.Parallel()
	noon := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	pick := func(product string, found bool, at time.Duration) PickObservation {
		return PickObservation{StoreID: "s", ProductID: product, Category: "c", Found: found, At: noon.Add(at)}
	}
	for _, tc := range []struct {
		name string
		obs  []PickObservation
		want MissRate
	}{
		{"a miss between two founds", []PickObservation{pick("a", true, 0), pick("a", false, 20*time.Minute), pick("a", true, 40*time.Minute)}, MissRate{Missed: 1, Confirmed: 1}},
		{"a found between two founds", []PickObservation{pick("a", true, 0), pick("a", true, 20*time.Minute), pick("a", true, 40*time.Minute)}, MissRate{Missed: 0, Confirmed: 1}},
		// The last unit taken at 10:00, the shelf empty at 12:30, a
		// delivery at 13:00, found at 13:30.
		{"an empty shelf refilled by a midday delivery", []PickObservation{pick("a", true, -2*time.Hour), pick("a", false, 30*time.Minute), pick("a", true, 90*time.Minute)}, MissRate{}},
		{"no found before", []PickObservation{pick("a", false, 0), pick("a", true, 20*time.Minute)}, MissRate{}},
		{"other products do not confirm", []PickObservation{pick("a", true, 0), pick("b", false, 20*time.Minute), pick("a", true, 40*time.Minute)}, MissRate{}},
	} {
		if got := shopperMisses(tc.obs); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// freshCountPicks is three days of picks of 40 products at one store, each
// after a fresh count of 5, the outcome a coin flip at found(hour): the
// same evidence at every hour, a shelf that does not say so.
func freshCountPicks(seed uint64, hours []int, found func(hour int) float64) []PickObservation {
	rng := rand.New(rand.NewPCG(18, seed))
	var obs []PickObservation
	for day := range 3 {
		for _, h := range hours {
			at := t0.Truncate(24 * time.Hour).Add(time.Duration(24*day+h) * time.Hour)
			for p := range 40 {
				e := AvailabilityEvidence{FeedQuantity: 5, FeedAt: at.Add(-5 * time.Minute), CountedAt: at.Add(-10 * time.Minute), LevelSince: at.Add(-10 * time.Minute)}
				obs = append(obs, PickObservation{StoreID: "s", ProductID: fmt.Sprintf("p%02d", p), Category: "c", Found: rng.Float64() < found(h), At: at, Evidence: e})
			}
		}
	}
	return obs
}

// Finding (issue 18, the eval targets): the hour of the day entered only
// the prior, worth a fraction of a pick next to a fresh count (seed 5:
// probes at 08:00 on the shelf 89%, answered 72%; at 21:00 51%, answered
// 64%). The fit learns what the posterior leaves unexplained about each
// hour, and serving shifts the answer by it.
func TestHourShiftsLearnTheDay(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	hours := []int{8, 9, 10, 11, 18, 19, 20, 21}
	obs := freshCountPicks(1, hours, func(h int) float64 {
		if h < 12 {
			return 0.95
		}
		return 0.5
	})
	priors := m.FitAvailabilityPriors(obs)
	day := t0.Truncate(24*time.Hour).AddDate(0, 0, 4)
	p := func(hour int) float64 {
		at := day.Add(time.Duration(hour) * time.Hour)
		e := AvailabilityEvidence{FeedQuantity: 5, FeedAt: at.Add(-5 * time.Minute), CountedAt: at.Add(-10 * time.Minute), LevelSince: at.Add(-10 * time.Minute)}
		return m.ProbabilityOf(e, priors, ShelfItem{StoreID: "s", ProductID: "p01", Category: "c"}, at)
	}
	if morning, evening := p(9), p(20); !(morning > 0.85 && evening < 0.65) {
		t.Errorf("a fresh count of 5: P(on shelf) %.3f at 09:00 (found 95%%), %.3f at 20:00 (found 50%%)", morning, evening)
	}
	if len(priors.HourShifts) != 24 || priors.HourShifts[3] != 0 {
		t.Errorf("hour shifts %v, want 24 of them, 0 for an hour without picks", priors.HourShifts)
	}
}

// Finding (issue 18, the eval targets): the fit weighed picks as they came,
// crowded into the busy hours, where shelves run lower, while the answer
// is asked of any moment the store is open. Each hour with picks weighs
// alike.
func TestMomentWeightEvensTheHours(t *testing.T) {
	t.Parallel()
	var p AvailabilityPriors
	if w := p.momentWeight(t0); w != 1 {
		t.Errorf("without pick hours: weight %v, want 1", w)
	}
	p.PickHours = make([]float64, 24)
	p.PickHours[9], p.PickHours[18] = 0.25, 0.75 // three picks at 18:00 for one at 09:00
	at := func(h int) time.Time { return t0.Truncate(24 * time.Hour).Add(time.Duration(h) * time.Hour) }
	quiet, busy := p.momentWeight(at(9)), p.momentWeight(at(18))
	if math.Abs(quiet-2) > 1e-12 || math.Abs(busy-2.0/3) > 1e-12 {
		t.Errorf("weights %v at the quiet hour, %v at the busy one; want 2 and 2/3", quiet, busy)
	}
	if mean := 0.25*quiet + 0.75*busy; math.Abs(mean-1) > 1e-12 {
		t.Errorf("mean weight over the picks %v, want 1", mean)
	}
}

// Finding (issue 18, the eval targets): a found pick fades at the pick
// half-life alone, whether the product sold a dozen times since or not
// once, and the posterior of a found pick long ago ties with that of no
// pick at all (seed 2: found 1-3 h before, on the shelf 83%, answered
// 90%). The fit learns what the posterior leaves unexplained by the latest
// pick's outcome and the picks expected since it.
func TestPickShiftsByPicksSince(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	rng := rand.New(rand.NewPCG(18, 4))
	var obs []PickObservation
	// 40 products picked 16 times a day; half of the picks follow a found
	// pick 8 h earlier (about 5 picks expected since: found 40%), half
	// come without a pick behind them (found 90%).
	for i := range 3 * 16 {
		at := t0.Add(time.Duration(i) * 90 * time.Minute)
		for p := range 40 {
			o := PickObservation{StoreID: "s", ProductID: fmt.Sprintf("p%02d", p), Category: "c", At: at, Found: rng.Float64() < 0.9}
			if (i+p)%2 == 0 {
				o.Evidence = AvailabilityEvidence{Found: 1, At: at.Add(-8 * time.Hour), LastFound: true}
				o.Found = rng.Float64() < 0.4
			}
			obs = append(obs, o)
		}
	}
	priors := m.FitAvailabilityPriors(obs)
	now := t0.Add(80 * time.Hour)
	item := ShelfItem{StoreID: "s", ProductID: "p01", Category: "c"}
	long := m.ProbabilityOf(AvailabilityEvidence{Found: 1, At: now.Add(-8 * time.Hour), LastFound: true}, priors, item, now)
	none := m.ProbabilityOf(AvailabilityEvidence{}, priors, item, now)
	if !(long < 0.55 && none > 0.85) {
		t.Errorf("P(on shelf): %.3f after a found pick 8 h ago (found 40%%), %.3f without a pick (found 90%%)", long, none)
	}
}

// Finding (issue 18, the eval targets): a zero's posterior was calibrated
// with every other item's, and meant something else there (seed 1:
// feed_says_zero log-loss 0.649, worse than last-event's 0.618). Zeros get
// a calibration of their own once the fit has minClassCalibration picks
// behind them (seeds 1-6 have 300 to 1,000); serving calibrates a zero
// with it, and every other item with the shared one.
func TestFeedZeroCalibration(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	fit := func(zeros int) AvailabilityPriors {
		rng := rand.New(rand.NewPCG(18, 5))
		var obs []PickObservation
		for i := range 2 * zeros {
			at := t0.Add(time.Duration(i) * time.Minute)
			o := PickObservation{StoreID: "s", ProductID: fmt.Sprintf("p%03d", i%(zeros/3)), Category: "c", At: at, Found: rng.Float64() < 0.9}
			if i%2 == 0 {
				o.Evidence = AvailabilityEvidence{FeedQuantity: 0, FeedAt: at.Add(-5 * time.Minute), CountedAt: at.Add(-10 * time.Minute)}
				o.Found = rng.Float64() < 0.3
			}
			obs = append(obs, o)
		}
		return m.FitAvailabilityPriors(obs)
	}
	if p := fit(minClassCalibration); len(p.FeedZeroCalibration.Points) == 0 {
		t.Errorf("no calibration of zeros from %d picks behind a zero", minClassCalibration)
	}
	if p := fit(minClassCalibration - 30); len(p.FeedZeroCalibration.Points) != 0 {
		t.Errorf("a calibration of zeros from %d picks behind a zero, fewer than %d", minClassCalibration-30, minClassCalibration)
	}

	flat := func(q float64) Calibration { return Calibration{Points: []CalibrationPoint{{0, q}, {1, q}}} }
	priors := DefaultAvailabilityPriors()
	priors.Calibration, priors.FeedZeroCalibration = flat(0.8), flat(0.2)
	now := t0.Add(80 * time.Hour)
	item := ShelfItem{StoreID: "s", ProductID: "p", Category: "c"}
	level := func(q int64) AvailabilityEvidence {
		return AvailabilityEvidence{FeedQuantity: q, FeedAt: now.Add(-5 * time.Minute), CountedAt: now.Add(-10 * time.Minute)}
	}
	if zero, five := m.ProbabilityOf(level(0), priors, item, now), m.ProbabilityOf(level(5), priors, item, now); zero != 0.2 || five != 0.8 {
		t.Errorf("P(on shelf) of a zero %v, of a 5 %v; want the zeros' calibration (0.2) and the shared one (0.8)", zero, five)
	}
}

// Priors written before the hour shifts, the pick shifts and the zeros'
// calibration load as they answered then.
func TestOldPriorsWithoutTheShelfDay(t *testing.T) {
	t.Parallel()
	old := DefaultAvailabilityPriors()
	now := t0.Add(80 * time.Hour)
	e := AvailabilityEvidence{Found: 1, At: now.Add(-time.Hour), LastFound: true, FeedQuantity: 0, FeedAt: now.Add(-5 * time.Minute), CountedAt: now.Add(-10 * time.Minute)}
	item := ShelfItem{StoreID: "s", ProductID: "p", Category: "c"}
	if s := old.hourShift(now) + old.pickShift(e, item.ProductID, now); s != 0 {
		t.Errorf("shift of priors without shifts %v, want 0", s)
	}
	if c := old.calibration(e); len(c.Points) != 0 {
		t.Errorf("calibration of a zero without one of its own %v, want the (empty) shared one", c)
	}
}

// Finding (issue 18, the eval targets): a not-found pick of last night and
// one of two hours ago shared a pick shift when as many picks were
// expected since (the night expects none), although the overnight restock
// came between the first and now (seed 2: not found 8-24 h before, across
// a night, on the shelf 75%; the same day, 24%). The opening of the
// shopping day is read off the pick hours, and a pick from before it has
// shifts of its own.
func TestPickShiftsAcrossTheOpening(t *testing.T) {
	t.Parallel()
	day := t0.Truncate(24 * time.Hour)
	shares := func(open ...int) []float64 {
		out := make([]float64, 24)
		for _, h := range open {
			out[h] = 1 / float64(len(open))
		}
		return out
	}
	hours := func(from, n int) []int { // n hours from from, past midnight if need be
		var out []int
		for i := range n {
			out = append(out, (from+i)%24)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		pickHours []float64
		start     int
		ok        bool
	}{
		{"open 08:00-22:00", shares(hours(8, 14)...), 8, true},
		{"open 20:00-04:00, past midnight", shares(hours(20, 8)...), 20, true},
		{"open all day, quiet 02:00-05:00", func() []float64 {
			s := shares(hours(0, 24)...)
			for h := 2; h < 5; h++ {
				s[h] = 0.001
			}
			return s
		}(), 5, true},
		{"open all day alike", shares(hours(0, 24)...), 0, false},
		{"no pick hours", nil, 0, false},
	} {
		p := AvailabilityPriors{PickHours: tc.pickHours}
		if start, ok := p.dayStartHour(); start != tc.start || ok != tc.ok {
			t.Errorf("%s: day starts at %d (%v), want %d (%v)", tc.name, start, ok, tc.start, tc.ok)
		}
	}

	p := AvailabilityPriors{PickHours: shares(hours(8, 14)...), WindowDays: 1, Products: map[string]FoundRate{"a": {Found: 14, Total: 14}}}
	at := func(d, h int) time.Time { return day.Add(time.Duration(24*d+h) * time.Hour) }
	for _, tc := range []struct {
		from, to time.Time
		opened   bool
	}{
		{at(0, 21), at(1, 9), true},
		{at(0, 13), at(0, 15), false},
		{at(0, 7), at(0, 8), true},
		{at(0, 8), at(0, 21), false},
		{at(0, 9), at(0, 9), false},
	} {
		if got := p.openedBetween(tc.from, tc.to); got != tc.opened {
			t.Errorf("opened between %s and %s: %v, want %v", tc.from.Format("Mon 15:04"), tc.to.Format("Mon 15:04"), got, tc.opened)
		}
	}
	// As many picks expected since each (one hour of picks), different
	// levels.
	lastNight := p.pickShiftLevel(AvailabilityEvidence{At: at(0, 21), NotFound: 1}, "a", at(1, 9))
	sameDay := p.pickShiftLevel(AvailabilityEvidence{At: at(1, 13), NotFound: 1}, "a", at(1, 14))
	if lastNight == sameDay || lastNight < 0 || sameDay < 0 {
		t.Errorf("pick shift levels: %d for a not-found of last night, %d for one an hour ago; want two levels", lastNight, sameDay)
	}
}

// Finding (issue 18, the found rate of items shown IN_STOCK): the decayed
// not-founds before a found pick still pulled the answer down after the
// pick had shown the shelf refilled, most for fast movers, whose counts
// pile up: three not-founds in the morning and a found pick at noon read
// as a shelf that is mostly empty. Priors fitted so
// (FoundSupersedesNotFound) let the latest found pick overrule them; the
// founds before a not-found still count, since a shopper's miss is no
// proof of an empty shelf, and priors fitted before score as they were
// fitted (seeds 4-6: log-loss .3566/.3502/.3366 -> .3546/.3478/.3283).
func TestFoundPickOverrulesTheNotFoundsBeforeIt(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	now := t0.Add(48 * time.Hour)
	var missedThenFound, missed AvailabilityEvidence
	for _, ago := range []time.Duration{3 * time.Hour, 2 * time.Hour, time.Hour} {
		missedThenFound = m.ObservePick(missedThenFound, false, now.Add(-ago))
	}
	missed = missedThenFound
	missedThenFound = m.ObservePick(missedThenFound, true, now.Add(-5*time.Minute))
	onlyFound := m.ObservePick(AvailabilityEvidence{}, true, now.Add(-5*time.Minute))
	foundThenMissed := m.ObservePick(onlyFound, false, now)

	before := testPriors()
	after := before
	after.FoundSupersedesNotFound = true
	item := ShelfItem{StoreID: "s-1", ProductID: "milk", Category: "dairy"}
	if p, want := m.ProbabilityOf(missedThenFound, after, item, now), m.ProbabilityOf(onlyFound, after, item, now); p != want {
		t.Errorf("three not-founds then a found pick: probability %.3f, want %.3f as for the found pick alone", p, want)
	}
	if p, old := m.ProbabilityOf(missedThenFound, before, item, now), m.ProbabilityOf(onlyFound, before, item, now); !(p < old) {
		t.Errorf("priors fitted before: probability %.3f, want below %.3f, the not-founds counting as they were fitted", p, old)
	}
	if p, alone := m.ProbabilityOf(foundThenMissed, after, item, now), m.ProbabilityOf(m.ObservePick(AvailabilityEvidence{}, false, now), after, item, now); !(p > alone) {
		t.Errorf("a found pick then a not-found: probability %.3f, want above %.3f, the found pick still counting", p, alone)
	}
	if p, old := m.ProbabilityOf(missed, after, item, now), m.ProbabilityOf(missed, before, item, now); p != old {
		t.Errorf("not-founds only: probability %.3f, want %.3f as before", p, old)
	}
	if !m.FitAvailabilityPriors([]PickObservation{{StoreID: "s-1", ProductID: "milk", Category: "dairy", Found: true, At: now, Evidence: missedThenFound}}).FoundSupersedesNotFound {
		t.Error("fitted priors do not let a found pick overrule the not-founds before it")
	}
}

// Finding (issue 18, "hours are UTC"): the catalog gives each store its
// time zone, but the hour of the day was read in UTC, so a marketplace
// whose stores keep their hours in zones apart learned one blurred day:
// a store eight hours ahead of UTC empties at 18:00 its time, 10:00 UTC,
// when a UTC store is full. Priors fitted so (LocalHours) read every hour
// on the store's clock; priors fitted before read UTC as they were fitted.
func TestHoursAreTheStoresOwn(t *testing.T) {
	t.Parallel()
	m := DefaultAvailabilityModel()
	ahead := time.FixedZone("UTC+8", 8*60*60)
	hours := []int{8, 9, 10, 11, 18, 19, 20, 21}
	found := func(h int) float64 {
		if h < 12 {
			return 0.95
		}
		return 0.5
	}
	// The same local day at both stores: the far store's picks come 8 h
	// earlier in UTC.
	var obs []PickObservation
	for _, o := range freshCountPicks(1, hours, found) {
		o.StoreID, o.Location = "utc", time.UTC
		obs = append(obs, o)
	}
	for _, o := range freshCountPicks(2, hours, found) {
		o.StoreID, o.Location = "far", ahead
		o.At = o.At.Add(-8 * time.Hour)
		o.Evidence.FeedAt, o.Evidence.CountedAt, o.Evidence.LevelSince = o.Evidence.FeedAt.Add(-8*time.Hour), o.Evidence.CountedAt.Add(-8*time.Hour), o.Evidence.LevelSince.Add(-8*time.Hour)
		obs = append(obs, o)
	}
	local := m.FitAvailabilityPriors(obs)
	if !local.LocalHours {
		t.Fatal("fitted priors do not read hours on the stores' clocks")
	}
	utcOnly := make([]PickObservation, len(obs))
	for i, o := range obs {
		o.Location = nil
		utcOnly[i] = o
	}
	blurred := m.FitAvailabilityPriors(utcOnly)

	tenUTC := t0.Truncate(24*time.Hour).AddDate(0, 0, 4).Add(10 * time.Hour)
	e := AvailabilityEvidence{FeedQuantity: 5, FeedAt: tenUTC.Add(-5 * time.Minute), CountedAt: tenUTC.Add(-10 * time.Minute), LevelSince: tenUTC.Add(-10 * time.Minute)}
	p := func(priors AvailabilityPriors, store string, loc *time.Location) float64 {
		return m.ProbabilityOf(e, priors, ShelfItem{StoreID: store, ProductID: "p01", Category: "c", Location: loc}, tenUTC)
	}
	// 10:00 at the UTC store (found 95%), 18:00 at the far one (found 50%).
	if morning, evening := p(local, "utc", time.UTC), p(local, "far", ahead); !(morning > 0.85 && evening < 0.65) {
		t.Errorf("on the stores' clocks at 10:00 UTC: P(on shelf) %.3f at the UTC store's 10:00, %.3f at the far store's 18:00", morning, evening)
	}
	if morning, evening := p(blurred, "utc", nil), p(blurred, "far", nil); !(morning-evening < 0.15) {
		t.Errorf("in UTC alone the two stores' 10:00 UTC should blur: %.3f and %.3f", morning, evening)
	}
	before := local
	before.LocalHours = false
	if got, want := p(before, "far", ahead), p(before, "far", nil); got != want {
		t.Errorf("priors fitted before: P %.3f with the store's zone, want %.3f as in UTC", got, want)
	}
}
