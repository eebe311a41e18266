package acmeup

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/providers/dns/alidns"
	"github.com/go-acme/lego/v4/providers/dns/cloudflare"
	"github.com/go-acme/lego/v4/providers/dns/digitalocean"
	"github.com/go-acme/lego/v4/providers/dns/dnspod"
	"github.com/go-acme/lego/v4/providers/dns/exec"
	"github.com/go-acme/lego/v4/providers/dns/httpreq"
	"github.com/go-acme/lego/v4/providers/dns/huaweicloud"
	"github.com/go-acme/lego/v4/providers/dns/rfc2136"
	"github.com/go-acme/lego/v4/providers/dns/tencentcloud"
)

// dnsProviders are the lego DNS providers a brand may name, each reading
// its credentials from lego's usual environment variables. The list is
// curated rather than lego's full registry (~180 providers): linking every
// cloud SDK made a first `go run ./cmd/acmegw` take minutes. "exec" and
// "httpreq" reach any other DNS service through a script or a web hook.
var dnsProviders = map[string]func() (challenge.Provider, error){
	"alidns":       func() (challenge.Provider, error) { return alidns.NewDNSProvider() },
	"cloudflare":   func() (challenge.Provider, error) { return cloudflare.NewDNSProvider() },
	"digitalocean": func() (challenge.Provider, error) { return digitalocean.NewDNSProvider() },
	"dnspod":       func() (challenge.Provider, error) { return dnspod.NewDNSProvider() },
	"exec":         func() (challenge.Provider, error) { return exec.NewDNSProvider() },
	"httpreq":      func() (challenge.Provider, error) { return httpreq.NewDNSProvider() },
	"huaweicloud":  func() (challenge.Provider, error) { return huaweicloud.NewDNSProvider() },
	"rfc2136":      func() (challenge.Provider, error) { return rfc2136.NewDNSProvider() },
	"tencentcloud": func() (challenge.Provider, error) { return tencentcloud.NewDNSProvider() },
}

// newDNSProvider builds the named provider from its environment variables.
func newDNSProvider(name string) (challenge.Provider, error) {
	newProvider, ok := dnsProviders[name]
	if !ok {
		names := make([]string, 0, len(dnsProviders))
		for n := range dnsProviders {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown DNS provider %q; known: %s", name, strings.Join(names, ", "))
	}
	return newProvider()
}
