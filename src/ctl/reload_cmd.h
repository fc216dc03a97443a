/*
 * reload_cmd.h - `transitctl reload`: ask the running transitd to load
 * its configuration again and report the outcome.
 *
 * The request is {"verb": "reload"} on the control socket (ctl/client.h;
 * so the socket's peer check decides who may reload: root, the server
 * user, its group), answered at once with the daemon's pid; the outcome
 * is read from <spool>/reload.status (ctl/reload_status.h): the command
 * waits, bounded, for an attempt of that daemon newer than the one it saw
 * before asking. (SIGHUP starts the same reload.)
 *
 * Exit status: 0 reloaded; 1 refused (the reason, "file:line: ...", on
 * stderr; the daemon keeps its configuration), daemon not running, or no
 * answer in time; 2 usage.
 */
#ifndef TRANSIT_CTL_RELOAD_CMD_H
#define TRANSIT_CTL_RELOAD_CMD_H

int ctl_reload(const char *conf_path, int argc, char **argv);

#endif
