//! The collection modules settle runs itself (`ansible.posix.*`, `community.general.*`), proven
//! on real test hosts in the four steps of tests/common/scenario.rs, by their full names and by
//! the short names ansible-core routes to them. No collection is installed on the controller.
//!
//! The container test hosts share this machine's kernel: on them `sysctl` writes only a file
//! (`reload: no`, `sysctl_set: no`). What changes a kernel, `modprobe` and `sysctl` setting
//! values, is proven on a virtual machine with a Debian kernel of its own (`vm_hosts`).

mod common;

use common::hosts::{TestHosts, test_hosts, vm_hosts};
use common::scenario::{Scenario, TURN, prove};

const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEIxGumpH0DfLVyh8gDhyDeLQWsXjaceGBak5WaXx6Gf";
const K2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrVygWvdvI8726423fi0XPJk21fq4MuA36Y92qJXT2R";
const K3: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC3m";
const K4: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnlyForTheTestsOfSettle";

#[test]
fn authorized_key_adds_replaces_and_removes_keys() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: &format!(
                "rm -rf /home/alice/.ssh; mkdir -m 755 /home/alice/.ssh; \
                 printf '# mine\\n{K3} old@z\\n{K1} was@x\\n' > /home/alice/.ssh/authorized_keys; \
                 chown -R alice: /home/alice/.ssh"
            ),
            tasks: &format!(
                "    - ansible.posix.authorized_key: {{user: alice, key: \"{K1} a@x\\n{K4} c@w\"}}\n    - authorized_key: {{user: alice, key: '{K2}', key_options: 'no-pty,from=\"10.0.0.1\"', comment: deploy}}\n    - authorized_key: {{user: alice, key: '{K3}', state: absent}}\n"
            ),
            verify: "cat /home/alice/.ssh/authorized_keys; stat -c '%U %a' /home/alice/.ssh /home/alice/.ssh/authorized_keys",
            expected: &format!(
                "# mine\n{K1} a@x\n{K4} c@w\nno-pty,from=\"10.0.0.1\" {K2} deploy\nalice 700\nalice 600\n"
            ),
            // A changed key moves to the end, as in Ansible: the last one keeps the order.
            drift: "sed -i 's/ deploy$/ edited/' /home/alice/.ssh/authorized_keys",
            diff_shows: &format!("-no-pty,from=\"10.0.0.1\" {K2} edited\n"),
        },
    );
}

#[test]
fn sysctl_settings_in_a_file_without_touching_the_kernel() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: "printf '# m-sysctl\\nkernel.m_old = 5\\n  vm.swappiness = 60\\n' > /etc/sysctl.d/90-m-sysctl.conf",
            tasks: "    - ansible.posix.sysctl: {name: vm.swappiness, value: '10', sysctl_file: /etc/sysctl.d/90-m-sysctl.conf, reload: no}\n    - sysctl: {name: kernel.panic, value: 3, sysctl_file: /etc/sysctl.d/90-m-sysctl.conf, reload: no, sysctl_set: no}\n    - sysctl: {name: kernel.m_old, state: absent, sysctl_file: /etc/sysctl.d/90-m-sysctl.conf, reload: no}\n",
            verify: "cat /etc/sysctl.d/90-m-sysctl.conf",
            expected: "# m-sysctl\nvm.swappiness=10\nkernel.panic=3\n",
            drift: "sed -i 's/^kernel.panic=3/kernel.panic = 9/' /etc/sysctl.d/90-m-sysctl.conf",
            diff_shows: "-kernel.panic = 9\n+kernel.panic=3",
        },
    );
}

#[test]
fn mount_tmpfs_mounted_fstab_present_and_absent() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: "umount /mnt/m-data 2>/dev/null; rm -rf /mnt/m-data /mnt/m-later; sed -i '/m-/d' /etc/fstab; \
                    echo 'tmpfs /mnt/m-gone tmpfs defaults 0 0' >> /etc/fstab",
            tasks: "    - ansible.posix.mount: {path: /mnt/m-data, src: tmpfs, fstype: tmpfs, opts: size=1m, state: mounted}\n    - mount: {path: /mnt/m-later, src: /dev/m-nodisk, fstype: ext4, opts: noatime, boot: no, state: present}\n    - mount: {path: /mnt/m-gone, state: absent}\n",
            verify: "grep m- /etc/fstab; findmnt -n -r -o SOURCE,FSTYPE /mnt/m-data; findmnt -n -o OPTIONS /mnt/m-data | grep -o 'size=[^,]*'; test -e /mnt/m-later || echo no-folder",
            expected: "tmpfs /mnt/m-data tmpfs size=1m 0 0\n/dev/m-nodisk /mnt/m-later ext4 noatime,noauto 0 0\ntmpfs tmpfs\nsize=1024k\nno-folder\n",
            drift: "sed -i 's/size=1m/size=2m/' /etc/fstab && mount -o remount /mnt/m-data",
            diff_shows: "-tmpfs /mnt/m-data tmpfs size=2m 0 0\n+tmpfs /mnt/m-data tmpfs size=1m 0 0",
        },
    );
}

#[test]
fn timezone_by_timedatectl() {
    let hosts = test_hosts();
    let host = hosts.names()[0];
    /// Puts the host back on UTC, however the scenario ends.
    struct Restore<'a>(&'a TestHosts, &'a str);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            self.0.ssh(self.1, "timedatectl set-timezone Etc/UTC; true");
        }
    }
    let _restore = Restore(hosts, host);
    prove(
        hosts,
        Scenario {
            host,
            reset: "timedatectl set-timezone Etc/UTC",
            tasks: "    - community.general.timezone: {name: Asia/Tokyo, hwclock: UTC}\n",
            verify: "timedatectl show -p Timezone --value; readlink /etc/localtime",
            expected: "Asia/Tokyo\n../usr/share/zoneinfo/Asia/Tokyo\n",
            drift: "timedatectl set-timezone Europe/Paris",
            diff_shows: "-    \"name\": \"Europe/Paris\"\n+    \"name\": \"Asia/Tokyo\"",
        },
    );
}

#[test]
fn locale_gen_enables_and_generates_locales() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[1],
            reset: "dpkg -s locales >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q locales >/dev/null 2>&1; \
                    sed -i -E 's/^(de_CH|nl_NL)\\.UTF-8/# \\1.UTF-8/' /etc/locale.gen; locale-gen >/dev/null 2>&1",
            tasks: "    - community.general.locale_gen: {name: [de_CH.UTF-8, nl_NL.UTF-8]}\n",
            verify: "locale -a | grep -E '^(de_CH|nl_NL)'; grep -E '^(de_CH|nl_NL)' /etc/locale.gen",
            expected: "de_CH.utf8\nnl_NL.utf8\nde_CH.UTF-8 UTF-8\nnl_NL.UTF-8 UTF-8\n",
            drift: "sed -i 's/^nl_NL.UTF-8/# nl_NL.UTF-8/' /etc/locale.gen; locale-gen >/dev/null 2>&1",
            diff_shows: "-# nl_NL.UTF-8 UTF-8\n+nl_NL.UTF-8 UTF-8",
        },
    );
}

#[test]
fn make_runs_only_out_of_date_targets() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: "command -v make >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q make >/dev/null 2>&1; \
                    rm -rf /srv/m-make; mkdir -p /srv/m-make; \
                    printf 'out.txt: in.txt\\n\\tcp in.txt out.txt\\n\\techo $(WHO) >> out.txt\\n' > /srv/m-make/Makefile; echo v1 > /srv/m-make/in.txt",
            tasks: "    - community.general.make: {chdir: /srv/m-make, target: out.txt, params: {WHO: me}}\n      register: built\n    - assert: {that: [\"built.command.endswith(' out.txt WHO=me')\"]}\n",
            verify: "cat /srv/m-make/out.txt",
            expected: "v1\nme\n",
            drift: "rm /srv/m-make/out.txt",
            diff_shows: "target: out of date → up to date",
        },
    );
}

#[test]
fn mount_unmounted_and_absent_undo_live_mounts() {
    let hosts = test_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[2],
            reset: "umount /mnt/m-u /mnt/m-abs 2>/dev/null; sed -i '/m-abs/d' /etc/fstab; \
                    mkdir -p /mnt/m-u /mnt/m-abs; mount -t tmpfs tmpfs /mnt/m-u; mount -t tmpfs tmpfs /mnt/m-abs; \
                    echo 'tmpfs /mnt/m-abs tmpfs defaults 0 0' >> /etc/fstab",
            tasks: "    - ansible.posix.mount: {path: /mnt/m-u, state: unmounted}\n    - ansible.posix.mount: {path: /mnt/m-abs, state: absent}\n",
            verify: "findmnt /mnt/m-u >/dev/null || echo m-u unmounted; test -e /mnt/m-abs || echo m-abs gone; grep -c m-abs /etc/fstab; true",
            expected: "m-u unmounted\nm-abs gone\n0\n",
            drift: "mount -t tmpfs tmpfs /mnt/m-u",
            diff_shows: "state: mounted → unmounted",
        },
    );
}

#[test]
fn modprobe_loads_and_unloads_kernel_modules_and_keeps_them_across_boots() {
    let hosts = vm_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "modprobe -r nbd; modprobe veth; \
                    rm -f /etc/modules-load.d/nbd.conf /etc/modprobe.d/nbd.conf; \
                    printf 'options nbd nbds_max=5\\n' > /etc/modprobe.d/old-nbd.conf",
            tasks: "    - community.general.modprobe: {name: nbd, params: nbds_max=2, persistent: present}\n    - modprobe: {name: veth, state: absent}\n",
            verify: "lsmod | awk '$1 == \"nbd\" || $1 == \"veth\" {print $1}'; cat /sys/module/nbd/parameters/nbds_max; \
                     cat /etc/modules-load.d/nbd.conf /etc/modprobe.d/nbd.conf /etc/modprobe.d/old-nbd.conf",
            expected: "nbd\n2\nnbd\noptions nbd nbds_max=2\n#options nbd nbds_max=5\n",
            drift: "modprobe -r nbd",
            diff_shows: "state: unloaded → loaded",
        },
    );
    // What `persistent` wrote is what the kernel goes by at the next boot: nbd loads, with the
    // options settle left in /etc/modprobe.d and not the commented-out ones. (Not `dummy`:
    // systemd's own /usr/lib/modprobe.d/systemd.conf gives it numdummies=0, which wins.)
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let host = hosts.names()[0];
    let s = hosts.scratch();
    s.write(
        "reboot.yml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - reboot: {reboot_timeout: 600}\n",
    );
    s.settle(&["reboot.yml", "-i", "inv"]).assert_code(0);
    assert_eq!(
        hosts.ssh(
            host,
            "lsmod | awk '$1 == \"nbd\" {print $1}'; cat /sys/module/nbd/parameters/nbds_max"
        ),
        "nbd\n2\n"
    );
}

#[test]
fn sysctl_sets_the_running_kernel_and_its_file() {
    let hosts = vm_hosts();
    prove(
        hosts,
        Scenario {
            host: hosts.names()[0],
            reset: "sysctl -qw vm.swappiness=60 net.ipv4.ip_forward=0; rm -f /etc/sysctl.d/90-vm.conf",
            tasks: "    - ansible.posix.sysctl: {name: vm.swappiness, value: '10', sysctl_file: /etc/sysctl.d/90-vm.conf, sysctl_set: true}\n    - sysctl: {name: net.ipv4.ip_forward, value: 1, sysctl_file: /etc/sysctl.d/90-vm.conf, reload: true}\n",
            verify: "sysctl -n vm.swappiness net.ipv4.ip_forward; cat /etc/sysctl.d/90-vm.conf",
            expected: "10\n1\nvm.swappiness=10\nnet.ipv4.ip_forward=1\n",
            // The file still says 10; only the running kernel drifted.
            drift: "sysctl -qw vm.swappiness=33",
            diff_shows: "33",
        },
    );
}
