package eval

// RankingMetrics score top-N lists against the one item that came next.
type RankingMetrics struct {
	HR  float64 `json:"hr_at_20"`  // share of lists that contain the next item
	MRR float64 `json:"mrr_at_20"` // mean reciprocal rank of the next item (0 when absent)
}

// rankingScore accumulates HR@N and MRR@N.
type rankingScore struct {
	hits, reciprocal float64
	n                int
}

// add scores one list: target's 0-based rank in it, or -1 when absent.
func (s *rankingScore) add(rank int) {
	s.n++
	if rank >= 0 {
		s.hits++
		s.reciprocal += 1 / float64(rank+1)
	}
}

func (s rankingScore) metrics() RankingMetrics {
	if s.n == 0 {
		return RankingMetrics{}
	}
	return RankingMetrics{HR: round6(s.hits / float64(s.n)), MRR: round6(s.reciprocal / float64(s.n))}
}
