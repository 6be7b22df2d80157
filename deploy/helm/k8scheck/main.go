// k8scheck decodes rendered Kubernetes manifests (helm template output, on stdin) strictly into
// the typed API objects of k8s.io/api: an unknown or misspelt field, or a value of the wrong type,
// is an error. Offline (no cluster, no downloaded schemas). Used by test/helm.test.ts.
//
// Output: one JSON line per document: {"kind":…,"name":…,"checked":true|false,"error":…}.
// Kinds it has no type for (the Prometheus Operator's CRDs) are reported with checked=false.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

type result struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Checked bool   `json:"checked"`
	Error   string `json:"error,omitempty"`
}

func typed(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "batch/v1/Job":
		return &batchv1.Job{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	}
	return nil
}

func main() {
	in, err := io.ReadAll(bufio.NewReader(os.Stdin))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	failed := false
	for _, doc := range bytes.Split(in, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		r := result{}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			r.Error = err.Error()
		} else {
			r.Kind, r.Name = head.Kind, head.Metadata.Name
			if obj := typed(head.APIVersion, head.Kind); obj != nil {
				r.Checked = true
				if err := yaml.UnmarshalStrict(doc, obj); err != nil {
					r.Error = err.Error()
				}
			}
		}
		if r.Error != "" {
			failed = true
		}
		_ = out.Encode(r)
	}
	if failed {
		os.Exit(1)
	}
}

func stripComments(doc []byte) []byte {
	var b strings.Builder
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return []byte(b.String())
}
