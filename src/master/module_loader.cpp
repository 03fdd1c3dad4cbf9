#include "master/module_loader.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#ifndef TRIDENT_MODULE_INSTALL_DIR
#define TRIDENT_MODULE_INSTALL_DIR "lib/trident"
#endif

namespace trident {

namespace fs = std::filesystem;

MpmModule::MpmModule(MpmModule&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      descriptor_(std::exchange(other.descriptor_, nullptr)),
      path_(std::move(other.path_)) {}

MpmModule::~MpmModule() {
    if (handle_ != nullptr) {
        dlclose(handle_);
    }
}

namespace {

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) {
        out += (out.empty() ? "" : ", ") + item;
    }
    return out.empty() ? "none" : out;
}

}  // namespace

Result<MpmModule> MpmModule::load(const fs::path& dir, const std::string& name) {
    const fs::path path = dir / ("mpm_" + name + ".so");
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        return Error{"MPM module '" + name + "' not found: no " + path.string() +
                     " (modules found in " + dir.string() + ": " + join(find_mpm_modules(dir)) +
                     ")"};
    }
    // RTLD_LOCAL: a module's symbols never satisfy another module's references.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        return Error{"cannot load MPM module " + path.string() + ": " + dlerror()};
    }
    auto close_with = [&](std::string message) -> Result<MpmModule> {
        dlclose(handle);
        return Error{path.string() + ": " + std::move(message)};
    };
    auto* entry = reinterpret_cast<TridentMpmModuleFn>(dlsym(handle, TRIDENT_MPM_SYMBOL));
    if (entry == nullptr) {
        return close_with("not a Trident MPM module (no " TRIDENT_MPM_SYMBOL " symbol)");
    }
    const TridentMpmModule* descriptor = entry();
    if (descriptor == nullptr) {
        return close_with(TRIDENT_MPM_SYMBOL "() returned no descriptor");
    }
    // Only the first two fields are read until both checks pass: they never move.
    if (descriptor->abi_version != TRIDENT_MPM_ABI_VERSION) {
        return close_with("MPM ABI version " + std::to_string(descriptor->abi_version) +
                          ", but this trident needs " + std::to_string(TRIDENT_MPM_ABI_VERSION) +
                          "; install the modules that came with this trident");
    }
    const std::string stamp = descriptor->build_stamp != nullptr ? descriptor->build_stamp : "";
    if (stamp != TRIDENT_BUILD_STAMP) {
        return close_with("module built by another build (stamp '" + stamp +
                          "', this trident is '" + TRIDENT_BUILD_STAMP +
                          "'); install the modules that came with it");
    }
    if (descriptor->name == nullptr || name != descriptor->name || descriptor->create == nullptr) {
        return close_with("descriptor does not describe the '" + name + "' MPM");
    }
    return MpmModule(handle, descriptor, path);
}

fs::path default_module_dir() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) {
        return fs::current_path(ec);
    }
    const fs::path exe_dir = exe.parent_path();
    if (!find_mpm_modules(exe_dir).empty()) {
        return exe_dir;  // a build tree: modules sit beside the executable
    }
    return (exe_dir.parent_path() / TRIDENT_MODULE_INSTALL_DIR).lexically_normal();
}

std::vector<std::string> find_mpm_modules(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string file = it->path().filename().string();
        if (file.starts_with("mpm_") && file.ends_with(".so") && file.size() > 7) {
            names.push_back(file.substr(4, file.size() - 7));
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace trident
