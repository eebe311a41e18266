package main

import (
	"time"

	"github.com/acmegw/acmegw/issuer"
)

// RulesConfig is a profile's rules: block, its product rules (issuer.Rules):
//
//	profiles:
//	  free-dv:
//	    brand: tencent
//	    rules:
//	      wildcard: false
//	      max_names: 1
//	      key_types: [rsa2048, ec256]
//	      max_validity: 90d
//	      blocked_suffixes: [.edu, .gov, .bank]
//	      blocked_words: [paypal]
//	      review_words: [casino]
//	      quota: {per_account: 50, per_registered_domain: 20, period: 365d}
type RulesConfig struct {
	Wildcard        *bool       `yaml:"wildcard"`
	IP              *bool       `yaml:"ip"`
	MaxNames        int         `yaml:"max_names"`
	KeyTypes        []string    `yaml:"key_types"`
	MaxValidity     Duration    `yaml:"max_validity"`
	BlockedSuffixes []string    `yaml:"blocked_suffixes"`
	BlockedWords    []string    `yaml:"blocked_words"`
	ReviewWords     []string    `yaml:"review_words"`
	Quota           QuotaConfig `yaml:"quota"`
}

// QuotaConfig is the quota: key of a profile's rules.
type QuotaConfig struct {
	PerAccount          int      `yaml:"per_account"`
	PerRegisteredDomain int      `yaml:"per_registered_domain"`
	Period              Duration `yaml:"period"`
}

// rules turns the configuration into issuer.Rules; issuer.NewRouter checks them.
func (c RulesConfig) rules() issuer.Rules {
	return issuer.Rules{
		Wildcard:        c.Wildcard,
		IP:              c.IP,
		MaxNames:        c.MaxNames,
		KeyTypes:        c.KeyTypes,
		MaxValidity:     time.Duration(c.MaxValidity),
		BlockedSuffixes: c.BlockedSuffixes,
		BlockedWords:    c.BlockedWords,
		ReviewWords:     c.ReviewWords,
		Quota: issuer.Quota{
			PerAccount:          c.Quota.PerAccount,
			PerRegisteredDomain: c.Quota.PerRegisteredDomain,
			Period:              time.Duration(c.Quota.Period),
		},
	}
}
