// keda-lag runs KEDA's own Kafka scaler (github.com/kedacore/keda/v2/pkg/scalers, the
// version tests/keda/tools pins) against a real broker, so that `genq lag` can be compared
// with it. It also sets up what a test needs that genq cannot (commit any offset, delete
// records). Built by tests/keda/tools; used by tests/integration/0401-lag-keda.sh.
//
//	keda-lag scale [-f scaledobject.yaml] [-polls N] [-auth k=v] [-auth-file k=path] key=value...
//	    The kafka trigger of the ScaledObject (read into KEDA's own ScaledObject type), then
//	    key=value metadata on top (key= removes one); -auth sets the TriggerAuthentication's
//	    parameters (-auth-file: from a file, for ca). One JSON line per poll:
//	    {"metric": N, "active": B} or {"error": "..."}; before each poll after the first, a
//	    line is read from stdin (the scaler keeps its state between polls, as KEDA's does).
//	keda-lag scale-so -f scaledobject.yaml [-auth k=v] [-auth-file k=path] key=value...
//	    Every kafka trigger of the ScaledObject (key=value metadata on top of each), one poll
//	    each, then, when the object has advanced.scalingModifiers, KEDA's own formula code
//	    (pkg/scaling/modifiers) over their metrics, and the activity as KEDA's
//	    getScaledObjectState decides it. One JSON line: {"triggers": [{"name", "metric",
//	    "active"}], "active": B[, "composite": N]} or {"error": "..."}.
//	keda-lag commit BROKERS GROUP TOPIC PARTITION OFFSET   commits OFFSET as it is (-2, past the end)
//	keda-lag delete-records BROKERS TOPIC PARTITION BEFORE  moves the log start to BEFORE
//	keda-lag create-topic BROKERS TOPIC PARTITIONS
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/go-logr/logr"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	"github.com/kedacore/keda/v2/pkg/scaling/cache"
	"github.com/kedacore/keda/v2/pkg/scaling/modifiers"
	v2 "k8s.io/api/autoscaling/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"sigs.k8s.io/yaml"
)

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "keda-lag: "+format+"\n", args...)
	os.Exit(2)
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

type pairs map[string]string

func (p pairs) String() string { return fmt.Sprint(map[string]string(p)) }
func (p pairs) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("%q: expected key=value", kv)
	}
	p[k] = v
	return nil
}

// The metadata of the one kafka trigger of a ScaledObject file.
func triggerMetadata(path string) map[string]string {
	data, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	var so kedav1alpha1.ScaledObject
	if err := yaml.UnmarshalStrict(data, &so); err != nil {
		die("%s: %v", path, err)
	}
	var md map[string]string
	for _, t := range so.Spec.Triggers {
		if t.Type == "kafka" {
			if md != nil {
				die("%s: more than one kafka trigger", path)
			}
			md = t.Metadata
		}
	}
	if md == nil {
		die("%s: no kafka trigger", path)
	}
	return md
}

func scale(args []string) {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	polls := fs.Int("polls", 1, "polls of the same scaler")
	file := fs.String("f", "", "a ScaledObject whose kafka trigger to read")
	auth, authFiles := pairs{}, pairs{}
	fs.Var(auth, "auth", "a TriggerAuthentication parameter, key=value")
	fs.Var(authFiles, "auth-file", "a TriggerAuthentication parameter read from a file, key=path")
	_ = fs.Parse(args)
	md := map[string]string{}
	if *file != "" {
		md = triggerMetadata(*file)
	}
	for _, kv := range fs.Args() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			die("metadata %q: expected key=value", kv)
		}
		if v == "" {
			delete(md, k)
		} else {
			md[k] = v
		}
	}
	for k, path := range authFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			die("%v", err)
		}
		auth[k] = string(data)
	}
	ctx := context.Background()
	cfg := &scalersconfig.ScalerConfig{
		ScalableObjectName:      "genq-worker",
		ScalableObjectNamespace: "genq",
		ScalableObjectType:      "ScaledObject",
		GlobalHTTPTimeout:       10 * time.Second,
		TriggerType:             "kafka",
		TriggerMetadata:         md,
		ResolvedEnv:             map[string]string{},
		AuthParams:              auth,
		MetricType:              v2.AverageValueMetricType,
	}
	s, err := scalers.NewKafkaScaler(ctx, cfg)
	if err != nil {
		emit(map[string]any{"error": err.Error()})
		return
	}
	defer s.Close(ctx)
	name := s.GetMetricSpecForScaling(ctx)[0].External.Metric.Name
	in := bufio.NewScanner(os.Stdin)
	for i := 0; i < *polls; i++ {
		if i > 0 && !in.Scan() {
			return
		}
		m, active, err := s.GetMetricsAndActivity(ctx, name)
		if err != nil {
			emit(map[string]any{"error": err.Error()})
			continue
		}
		emit(map[string]any{"metric": m[0].Value.Value(), "active": active})
	}
}

// scaleSO polls every kafka trigger of a ScaledObject once and combines them as KEDA does.
func scaleSO(args []string) {
	fs := flag.NewFlagSet("scale-so", flag.ExitOnError)
	file := fs.String("f", "", "the ScaledObject")
	auth, authFiles := pairs{}, pairs{}
	fs.Var(auth, "auth", "a TriggerAuthentication parameter, key=value")
	fs.Var(authFiles, "auth-file", "a TriggerAuthentication parameter read from a file, key=path")
	_ = fs.Parse(args)
	data, err := os.ReadFile(*file)
	if err != nil {
		die("%v", err)
	}
	var so kedav1alpha1.ScaledObject
	if err := yaml.UnmarshalStrict(data, &so); err != nil {
		die("%s: %v", *file, err)
	}
	for k, path := range authFiles {
		b, err := os.ReadFile(path)
		if err != nil {
			die("%v", err)
		}
		auth[k] = string(b)
	}
	ctx := context.Background()
	var metrics []external_metrics.ExternalMetricValue
	pairList := map[string]string{}
	triggers := []map[string]any{}
	anyActive := false
	for i, t := range so.Spec.Triggers {
		if t.Type != "kafka" {
			continue
		}
		md := maps.Clone(t.Metadata)
		for _, kv := range fs.Args() {
			k, v, _ := strings.Cut(kv, "=")
			md[k] = v
		}
		cfg := &scalersconfig.ScalerConfig{
			ScalableObjectName:      so.Name,
			ScalableObjectNamespace: "genq",
			ScalableObjectType:      "ScaledObject",
			GlobalHTTPTimeout:       10 * time.Second,
			TriggerType:             "kafka",
			TriggerName:             t.Name,
			TriggerIndex:            i,
			TriggerMetadata:         md,
			ResolvedEnv:             map[string]string{},
			AuthParams:              auth,
			MetricType:              v2.AverageValueMetricType,
		}
		s, err := scalers.NewKafkaScaler(ctx, cfg)
		if err != nil {
			emit(map[string]any{"error": err.Error()})
			return
		}
		name := s.GetMetricSpecForScaling(ctx)[0].External.Metric.Name
		m, active, err := s.GetMetricsAndActivity(ctx, name)
		s.Close(ctx)
		if err != nil {
			emit(map[string]any{"error": err.Error()})
			return
		}
		// As the scale handler pairs each metric with its trigger's name for the formula.
		p, err := modifiers.GetPairTriggerAndMetric(&so, name, t.Name)
		if err != nil {
			emit(map[string]any{"error": err.Error()})
			return
		}
		maps.Copy(pairList, p)
		metrics = append(metrics, m...)
		anyActive = anyActive || active
		triggers = append(triggers, map[string]any{"name": t.Name, "metric": m[0].Value.Value(), "active": active})
	}
	out := map[string]any{"triggers": triggers, "active": anyActive}
	if so.IsUsingModifiers() {
		program, err := kedav1alpha1.ValidateAndCompileScalingModifiers(&so)
		if err != nil {
			emit(map[string]any{"error": err.Error()})
			return
		}
		res := modifiers.HandleScalingModifiers(&so, metrics, pairList, false, nil,
			&cache.ScalersCache{CompiledFormula: program}, logr.Discard())
		if len(res) != 1 || res[0].MetricName != kedav1alpha1.CompositeMetricName {
			emit(map[string]any{"error": "the formula gave no composite metric"})
			return
		}
		// getScaledObjectState (pkg/scaling/scale_handler.go) with a formula: active when the
		// composite value is above activationTarget (0 when unset); triggers' own activity
		// no longer counts.
		activation := 0.0
		if a := so.Spec.Advanced.ScalingModifiers.ActivationTarget; a != "" {
			if activation, err = strconv.ParseFloat(a, 64); err != nil {
				emit(map[string]any{"error": err.Error()})
				return
			}
		}
		v := res[0].Value.AsApproximateFloat64()
		out["composite"] = v
		out["active"] = v > activation
	}
	emit(out)
}

func client(brokers string) sarama.Client {
	c := sarama.NewConfig()
	c.Version = sarama.V2_1_0_0
	cl, err := sarama.NewClient(strings.Split(brokers, ","), c)
	if err != nil {
		die("%v", err)
	}
	return cl
}

func num(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		die("%q: not a number", s)
	}
	return n
}

func commit(a []string) {
	if len(a) != 5 {
		die("commit BROKERS GROUP TOPIC PARTITION OFFSET")
	}
	cl := client(a[0])
	defer cl.Close()
	coord, err := cl.Coordinator(a[1])
	if err != nil {
		die("coordinator: %v", err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: a[1],
		ConsumerGroupGeneration: sarama.GroupGenerationUndefined, RetentionTime: -1}
	req.AddBlock(a[2], int32(num(a[3])), num(a[4]), 0, "")
	resp, err := coord.CommitOffset(req)
	if err != nil {
		die("commit: %v", err)
	}
	for _, ps := range resp.Errors {
		for p, e := range ps {
			if e != sarama.ErrNoError {
				die("commit partition %d: %v", p, e)
			}
		}
	}
}

func deleteRecords(a []string) {
	if len(a) != 4 {
		die("delete-records BROKERS TOPIC PARTITION BEFORE")
	}
	cl := client(a[0])
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		die("%v", err)
	}
	defer admin.Close()
	if err := admin.DeleteRecords(a[1], map[int32]int64{int32(num(a[2])): num(a[3])}); err != nil {
		die("delete records: %v", err)
	}
}

func createTopic(a []string) {
	if len(a) != 3 {
		die("create-topic BROKERS TOPIC PARTITIONS")
	}
	cl := client(a[0])
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		die("%v", err)
	}
	defer admin.Close()
	d := &sarama.TopicDetail{NumPartitions: int32(num(a[2])), ReplicationFactor: 1}
	if err := admin.CreateTopic(a[1], d, false); err != nil {
		die("create topic: %v", err)
	}
}

func main() {
	if len(os.Args) < 2 {
		die("scale | scale-so | commit | delete-records | create-topic")
	}
	switch os.Args[1] {
	case "scale":
		scale(os.Args[2:])
	case "scale-so":
		scaleSO(os.Args[2:])
	case "commit":
		commit(os.Args[2:])
	case "delete-records":
		deleteRecords(os.Args[2:])
	case "create-topic":
		createTopic(os.Args[2:])
	default:
		die("unknown command %q", os.Args[1])
	}
}
