module omail

go 1.26.8

require (
	github.com/colinmarc/cdb v0.0.0-20190223170904-60f317823f70
	github.com/d--j/go-milter v0.10.1
	github.com/emersion/go-message v0.18.2
	github.com/emersion/go-msgauth v0.7.0
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.25.1
	github.com/google/renameio/v2 v2.0.2
	github.com/klauspost/compress v1.20.4
	golang.org/x/net v0.43.0
	golang.org/x/sys v0.50.0
	golang.org/x/text v0.28.0
)

require golang.org/x/crypto v0.41.0 // indirect
