// trident: the master process's command line, in httpd's spirit.

#include <getopt.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "log/error_log.hpp"
#include "master/control.hpp"
#include "master/master.hpp"
#include "master/module_loader.hpp"
#include "trident/build_info.hpp"
#include "trident/config.hpp"
#include "trident/mpm.hpp"

#ifndef TRIDENT_DEFAULT_CONFIG
#define TRIDENT_DEFAULT_CONFIG "/etc/trident/trident.yaml"
#endif

namespace {

/// The config an installed trident reads without -f: <prefix>/etc/trident/trident.yaml beside
/// the executable's <prefix>/sbin (or /etc/trident for the /usr prefix), as `make install`
/// lays it out; the configured default otherwise (e.g. in a build tree).
std::string default_config_file() {
    std::error_code ec;
    const auto prefix =
        std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().parent_path();
    if (!ec) {
        const auto installed = prefix == "/usr" ? std::filesystem::path("/etc/trident/trident.yaml")
                                                : prefix / "etc/trident/trident.yaml";
        if (std::filesystem::exists(installed, ec)) {
            return installed.string();
        }
    }
    return TRIDENT_DEFAULT_CONFIG;
}

void print_usage(std::FILE* out) {
    std::fprintf(out,
                 "Usage: trident [-f FILE] [-k COMMAND] [-t] [-v] [-V] [-h]\n"
                 "  -f FILE  configuration file (default: %s)\n"
                 "  -k CMD   start: run the master unless one already runs; stop (SIGTERM),\n"
                 "           restart (SIGHUP), graceful (SIGUSR1), graceful-stop (SIGWINCH):\n"
                 "           signal the master named by the config's pid_file; restart and\n"
                 "           graceful test the configuration first\n"
                 "  -t       test the configuration: print \"Syntax OK\" or the error, then exit\n"
                 "  -v       show the version and exit\n"
                 "  -V       show the version, build settings and the MPM modules found\n"
                 "  -h       show this help\n"
                 "Runs in the foreground; SIGTERM or SIGINT stops it, SIGWINCH stops it "
                 "gracefully,\nSIGUSR1 restarts it gracefully, SIGHUP restarts it.\n",
                 default_config_file().c_str());
}

void print_build_info() {
    const auto dir = trident::default_module_dir();
    std::string found;
    for (const std::string& name : trident::find_mpm_modules(dir)) {
        found += (found.empty() ? "" : ", ") + name;
    }
    std::printf("Server version: Trident/%s\n", TRIDENT_VERSION);
    std::printf("Build type:     %s\n", TRIDENT_BUILD_TYPE);
    std::printf("Build stamp:    %s\n", TRIDENT_BUILD_STAMP);
    std::printf("Compiler:       %s\n", TRIDENT_COMPILER);
    std::printf("MPM ABI:        %u\n", TRIDENT_MPM_ABI_VERSION);
    std::printf("Module dir:     %s\n", dir.c_str());
    std::printf("MPMs found:     %s\n", found.empty() ? "none" : found.c_str());
    std::printf("Default config: %s\n", default_config_file().c_str());
}

}  // namespace

int main(int argc, char** argv) {
    // A log at the file size limit (ulimit -f, systemd's LimitFSIZE=) must fail its write
    // with EFBIG, which the logs report, not kill the process, as Apache does. Set before
    // the first line is logged; every child inherits it.
    std::signal(SIGXFSZ, SIG_IGN);
    std::string config_file = default_config_file();
    bool test_only = false;
    std::optional<trident::ControlCommand> command;
    int opt;
    while ((opt = getopt(argc, argv, "f:k:tvVh")) != -1) {
        switch (opt) {
            case 'f':
                config_file = optarg;
                break;
            case 'k':
                command = trident::parse_control_command(optarg);
                if (!command) {
                    std::fprintf(stderr, "trident: unknown -k command '%s'\n", optarg);
                    print_usage(stderr);
                    return 1;
                }
                break;
            case 't':
                test_only = true;
                break;
            case 'v':
                std::printf("Server version: Trident/%s\n", TRIDENT_VERSION);
                return 0;
            case 'V':
                print_build_info();
                return 0;
            case 'h':
                print_usage(stdout);
                return 0;
            default:
                print_usage(stderr);
                return 1;
        }
    }
    if (optind < argc) {
        std::fprintf(stderr, "trident: unexpected argument '%s'\n", argv[optind]);
        print_usage(stderr);
        return 1;
    }

    auto config = trident::load_config(config_file);
    if (!config) {
        std::fprintf(stderr, "%s\n", config.error().message.c_str());
        if (command == trident::ControlCommand::graceful ||
            command == trident::ControlCommand::restart) {
            std::fprintf(stderr, "trident: not signalling the master: the config has errors\n");
        }
        return 1;
    }
    if (test_only) {
        // Like a start, minus binding: the MPM module must exist and pass its checks, and
        // the children's user and group must resolve.
        if (auto error = trident::check_config(config.value())) {
            std::fprintf(stderr, "%s\n", error->c_str());
            return 1;
        }
        std::printf("Syntax OK\n");
        return 0;
    }
    if (command && *command != trident::ControlCommand::start) {
        return trident::send_control_command(*command, config.value());
    }
    // `-k start` and a plain start are one: the master itself refuses to start while a live
    // master holds the pid file, and takes over a stale one with a notice.
    if (auto configured = trident::log::configure(config->error_log); !configured) {
        std::fprintf(stderr, "trident: %s\n", configured.error().message.c_str());
        return 1;
    }
    return trident::run_master(config.value());
}
