// Package testfake holds the stand-ins that the unit tests of several
// packages share, so that each is written, and tested, once:
//
//   - Queue: a queue program speaking qmail-queue's protocol that keeps
//     every message and envelope it is given, and exits with the code a
//     test asks for (for qqclient, omail-unpack proxy, omail-smtpd and
//     anything else that runs OMAILQUEUE/QMAILQUEUE);
//   - DNS: a resolver answering MX and host lookups from maps, so that
//     no test ever sends a DNS query (for route and remote);
//   - Log: a log several goroutines write to at once.
//
// It lives under lib/internal so that only this module can import it,
// and it imports no other omail package, so that any package's
// in-package tests can use it without an import cycle.
package testfake
