/*
 * cert.h - "transitctl cert ...": the certificate store of
 * net/certstore.h from the command line (list, new, request, import,
 * use, renew). Works on the files, so it answers whether or not transitd
 * runs; a running transitd sees a changed binding within a second
 * (net/tls_runtime.h).
 */
#ifndef TRANSIT_CTL_CERT_H
#define TRANSIT_CTL_CERT_H

/* argv[0] is "cert". Exit status: 0, 1 (runtime error), 2 (usage). */
int ctl_cert(const char *conf_path, int argc, char **argv);

#endif
