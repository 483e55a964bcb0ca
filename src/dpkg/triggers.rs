//! dpkg's file-trigger interests (`<admindir>/triggers/File`): which package asked to be
//! triggered by which path. Our own interests are how dpkg runs without apt reach the hook.

use std::path::Path;

/// The database file, relative to the admindir.
pub const FILE: &str = "triggers/File";

/// The paths `package` has a file-trigger interest in, from the text of `triggers/File`
/// (`PATH PACKAGE[:ARCH][/noawait]` per line). Anything else on a line is not ours.
pub fn interests<'a>(text: &'a str, package: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(path, who)| {
            let name = who.split_once('/').map_or(*who, |(n, _)| n);
            let name = name.split_once(':').map_or(name, |(n, _)| n);
            name == package && path.starts_with('/')
        })
        .map(|(path, _)| path)
        .collect()
}

/// How many file-trigger interests `package` has registered with the dpkg of `admindir`
/// (0 when the database is missing or unreadable: nothing triggers it then).
pub fn count(admindir: &Path, package: &str) -> usize {
    crate::fsutil::read_nofollow(&admindir.join(FILE), 1024 * 1024)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map_or(0, |t| interests(&t, package).len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn interests_of_one_package() {
        let text = "/usr/share/dbus-1/system.d dbus/noawait\n\
                    /lib/systemd/system/docker.service docker-upgrade-guard/noawait\n\
                    /usr/bin/containerd docker-upgrade-guard:amd64/noawait\n\
                    /usr/bin/dockerd docker-upgrade-guard\n\
                    /usr/bin/x docker-upgrade-guard-extra/noawait\n\
                    garbage\n";
        assert_eq!(
            super::interests(text, "docker-upgrade-guard"),
            [
                "/lib/systemd/system/docker.service",
                "/usr/bin/containerd",
                "/usr/bin/dockerd"
            ]
        );
        assert!(super::interests("", "docker-upgrade-guard").is_empty());
    }
}
