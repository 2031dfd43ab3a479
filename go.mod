module github.com/strata-net/strata

go 1.26
