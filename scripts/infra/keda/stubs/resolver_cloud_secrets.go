// Cloud secret stores (AWS Secrets Manager, Azure Key Vault, GCP Secret Manager, HashiCorp
// Vault) are left out of this build of KEDA: it is built for a test node where only Kafka
// triggers with plain Secrets run, and the cloud SDKs would triple its build time.
package resolver

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers/authentication"
)

// The flag's default, as in KEDA's hashicorpvault_handler.go.
const DefaultVaultKubernetesAuthTokenFile = "/var/run/secrets/keda-vault/token"

var errLeftOut = errors.New("cloud secret stores are not in this KEDA build")

type AwsSecretManagerHandler struct{}

func NewAwsSecretManagerHandler(*kedav1alpha1.AwsSecretManager) *AwsSecretManagerHandler {
	return &AwsSecretManagerHandler{}
}

func (*AwsSecretManagerHandler) Read(context.Context, logr.Logger, string, string, string, string) (string, error) {
	return "", errLeftOut
}

func (*AwsSecretManagerHandler) Initialize(context.Context, client.Client, logr.Logger, string, corev1listers.SecretLister, *corev1.PodSpec) error {
	return errLeftOut
}

func (*AwsSecretManagerHandler) Stop() {}

type AzureKeyVaultHandler struct{}

func NewAzureKeyVaultHandler(*kedav1alpha1.AzureKeyVault) *AzureKeyVaultHandler {
	return &AzureKeyVaultHandler{}
}

func (*AzureKeyVaultHandler) Initialize(context.Context, client.Client, logr.Logger, string, corev1listers.SecretLister) error {
	return errLeftOut
}

func (*AzureKeyVaultHandler) Read(context.Context, string, string) (string, error) {
	return "", errLeftOut
}

type GCPSecretManagerHandler struct{}

func NewGCPSecretManagerHandler(*kedav1alpha1.GCPSecretManager) *GCPSecretManagerHandler {
	return &GCPSecretManagerHandler{}
}

func (*GCPSecretManagerHandler) Initialize(context.Context, client.Client, logr.Logger, string, corev1listers.SecretLister) error {
	return errLeftOut
}

func (*GCPSecretManagerHandler) Read(context.Context, string, string) (string, error) {
	return "", errLeftOut
}

type HashicorpVaultHandler struct{}

func NewHashicorpVaultHandler(*kedav1alpha1.HashiCorpVault, *authentication.AuthClientSet, string) *HashicorpVaultHandler {
	return &HashicorpVaultHandler{}
}

func (*HashicorpVaultHandler) Initialize(logr.Logger) error { return errLeftOut }

func (*HashicorpVaultHandler) Stop() {}

func (*HashicorpVaultHandler) ResolveSecrets(s []kedav1alpha1.VaultSecret) ([]kedav1alpha1.VaultSecret, error) {
	return s, errLeftOut
}

// vaultAddressesEqual is KEDA's own (from hashicorpvault_handler.go): the outbound policy
// validates its Vault allow-list with it, Vault or not.
func vaultAddressesEqual(a, b string) bool {
	ua, erra := url.Parse(strings.TrimSpace(a))
	ub, errb := url.Parse(strings.TrimSpace(b))
	if erra != nil || errb != nil {
		return false
	}
	if ua.User != nil || ub.User != nil || ua.Hostname() == "" || ub.Hostname() == "" {
		return false
	}
	if ua.Scheme != "http" && ua.Scheme != "https" || ub.Scheme != "http" && ub.Scheme != "https" {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}
