# Sourced by the install scripts that take their packages from Debian; not run on its own.
# as_root runs a command as root (through sudo when this user is not root); apt_install
# refreshes the package lists and installs the named packages without recommends or prompts.

as_root() {
    if [ "$(id -u)" -ne 0 ]; then
        sudo "$@"
    else
        "$@"
    fi
}

apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}
