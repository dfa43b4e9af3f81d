/* Drover's version, shown by --version and in API and PBS outputs. */
#ifndef DV_VERSION_H
#define DV_VERSION_H

#define DV_VERSION "0.1.0"

#endif
