// promql-names: parses PromQL expressions with Prometheus's own parser and lists the metric
// names each one selects, for tests/monitoring/check.py.
//
// stdin: a JSON array of {"id": "...", "expr": "..."}; stdout: a JSON array of
// {"id": "...", "error": "..." or "", "metrics": ["name", ...]}. A selector without a
// metric name (only label matchers) is reported as the name "" so that the caller can refuse it.
package main

import (
	"encoding/json"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type query struct {
	ID   string `json:"id"`
	Expr string `json:"expr"`
}

type answer struct {
	ID      string   `json:"id"`
	Error   string   `json:"error"`
	Metrics []string `json:"metrics"`
}

func names(expr parser.Expr) []string {
	set := map[string]bool{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		set[name] = true
		return nil
	})
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func main() {
	var qs []query
	if err := json.NewDecoder(os.Stdin).Decode(&qs); err != nil {
		os.Stderr.WriteString("promql-names: " + err.Error() + "\n")
		os.Exit(2)
	}
	out := make([]answer, 0, len(qs))
	// The default options: what a Prometheus server without feature flags accepts.
	p := parser.NewParser(parser.Options{})
	for _, q := range qs {
		a := answer{ID: q.ID, Metrics: []string{}}
		expr, err := p.ParseExpr(q.Expr)
		if err != nil {
			a.Error = err.Error()
		} else {
			a.Metrics = names(expr)
		}
		out = append(out, a)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		os.Exit(2)
	}
}
