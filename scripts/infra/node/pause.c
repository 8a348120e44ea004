/* The sandbox ("pause") process of every pod on the local node: it holds the pod's
 * namespaces, reaps orphaned children and exits on SIGINT/SIGTERM. Built static so that
 * its image is a single file (FROM scratch); registry.k8s.io cannot be reached here. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {.sa_handler = on_term};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (getpid() != 1) {
    /* Outside a PID namespace the reaping would steal other processes' children. */
    child.sa_handler = SIG_DFL;
  }
  sigaction(SIGINT, &term, NULL);
  sigaction(SIGTERM, &term, NULL);
  sigaction(SIGCHLD, &child, NULL);
  for (;;) {
    pause();
  }
}
