#ifndef FLAB_VERSION
#define FLAB_VERSION "0.1.0"
#endif
