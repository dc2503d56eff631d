//! Boot: console, device tree, boot config, kernel map, frame table, interrupts, timer,
//! then the domains the config declares, and into the first one.

use crate::arch::aarch64::mmu::PAGE_BYTES;
use crate::arch::aarch64::{cpu, exception, mmu, timer};
use crate::board::qemu_virt::VIRTUAL_TIMER_INTID;
use crate::kernel::{kernel, Kernel};
use crate::memory::frames::FrameAllocator;
use crate::object::capability::Object;
use crate::{console, println, programs, report};
use abi::Error;
use accounting::SetId;
use devicetree as dtb;
use kcore::bootcfg;
use kcore::bootcfg::{BootConfig, CapSpec};
use kcore::elf;

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Failure exit status for a bad device tree or boot config.
pub const EXIT_BAD_INPUT: u32 = 1;

fn fail(what: &str, detail: &dyn core::fmt::Display) -> ! {
    println!("tally: {what}: {detail}");
    console::framed("end", |w| {
        write!(w, "{{\"status\":\"error\",\"reason\":\"{what}\"}}")
    });
    cpu::exit_qemu(EXIT_BAD_INPUT)
}

/// The highest physical address boot.s maps (GiB 1..15) and thus where a DTB may lie.
const BOOT_MAPPED_END: usize = 16 << 30;

fn read_device_tree(dtb_pa: usize) -> Result<dtb::BootInfo, dtb::DtbError> {
    if dtb_pa == 0 {
        return Err(dtb::DtbError::Missing);
    }
    if !((1 << 30)..BOOT_MAPPED_END - dtb::MAX_TREE_BYTES).contains(&dtb_pa)
        || !dtb_pa.is_multiple_of(8)
    {
        return Err(dtb::DtbError::Truncated("the address in x0 is not in RAM"));
    }
    // SAFETY: the address is 8-aligned inside the boot linear map; the header is 40 bytes.
    let header = unsafe { core::slice::from_raw_parts(mmu::phys_to_virt(dtb_pa) as *const u8, 40) };
    let size = dtb::total_size(header)?;
    // SAFETY: the whole tree (at most MAX_TREE_BYTES) lies inside the boot linear map, and
    // nothing writes it while we parse.
    let tree = unsafe { core::slice::from_raw_parts(mmu::phys_to_virt(dtb_pa) as *const u8, size) };
    dtb::parse(tree)
}

/// Brings the kernel up and starts the first domain. Never returns.
pub fn init(dtb_pa: usize) -> ! {
    cpu::start_instruction_counter();
    console::init();
    println!("Tally {} booting", env!("CARGO_PKG_VERSION"));
    let info = read_device_tree(dtb_pa).unwrap_or_else(|e| fail("bad device tree", &e));
    let config = bootcfg::parse(&info.bootargs, programs::NAMES)
        .unwrap_or_else(|e| fail("bad boot config", &e));
    console::init_log(config.log_level);
    // SAFETY: linker symbols; only their addresses are used.
    let (image_start, image_end) = unsafe {
        (
            mmu::virt_to_phys(&__kernel_start as *const u8 as usize),
            mmu::virt_to_phys(&__kernel_end as *const u8 as usize),
        )
    };
    let ram = info
        .memory
        .iter()
        .copied()
        .find(|&(start, bytes)| start <= image_start && image_end <= start + bytes)
        .unwrap_or_else(|| {
            fail(
                "bad device tree",
                &"no /memory range contains the kernel image",
            )
        });
    log::info!(
        "RAM {:#x}..{:#x} ({} MiB), kernel image {:#x}..{:#x}, config '{}'",
        ram.0,
        ram.0 + ram.1,
        ram.1 >> 20,
        image_start,
        image_end,
        config.config
    );
    start(ram, image_end, config)
}

/// Builds the kernel state, creates the config's charge sets and domains, takes the `start`
/// snapshot and enters the first domain.
pub fn start(ram: (usize, usize), image_end: usize, config: BootConfig) -> ! {
    let (ram_start, ram_bytes) = ram;
    let ram_end = ram_start + ram_bytes;
    mmu::init_kernel_map(ram_start, ram_end);
    let total_frames = ram_bytes / PAGE_BYTES;
    let table_start = (image_end + PAGE_BYTES - 1) & !(PAGE_BYTES - 1);
    let table_bytes = total_frames * core::mem::size_of::<accounting::FrameEntry>();
    let first_free = (table_start + table_bytes + PAGE_BYTES - 1) & !(PAGE_BYTES - 1);
    // SAFETY: [table_start, first_free) is RAM right after the kernel image, inside the linear
    // map, used for nothing else (the device tree may have been there, but was parsed and
    // copied already); it is zeroed before the slice is formed, and zero is FrameEntry::FREE.
    let frame_table = unsafe {
        let pointer = mmu::phys_to_virt(table_start) as *mut accounting::FrameEntry;
        let mut page = table_start;
        while page < first_free {
            cpu::zero_page(mmu::phys_to_virt(page) as *mut u8);
            page += PAGE_BYTES;
        }
        core::slice::from_raw_parts_mut(pointer, total_frames)
    };
    let mut k = kernel();
    k.frames = FrameAllocator::new(ram_start, ram_end, first_free);
    let boot_frames = k.frames.boot_frames() as u32;
    if let Err(e) = k.books.open(frame_table, &config, boot_frames) {
        crate::println!("tally: bad boot config: {e}");
        report::end(false, "bad boot config");
        cpu::exit_qemu(EXIT_BAD_INPUT);
    }
    k.config = config;
    k.gic.init(VIRTUAL_TIMER_INTID);
    report::run_record(&k, ram_bytes);
    if let Err(error) = k.create_config_objects() {
        crate::println!("tally: bad boot config: {error}");
        report::end(false, "bad boot config");
        cpu::exit_qemu(EXIT_BAD_INPUT);
    }
    timer::start(k.config.tick_hz);
    k.switch();
    drop(k);
    exception::return_to_user()
}

impl Kernel {
    /// Creates the config's charge sets, then its domains with their capabilities.
    fn create_config_objects(&mut self) -> Result<(), BootError> {
        let sets = self.config.sets.clone();
        for spec in &sets {
            let parent = match &spec.parent {
                Some(parent) => Some(
                    self.config_set(parent)
                        .ok_or(BootError::Message("undefined parent set"))?,
                ),
                None => None,
            };
            let id = self
                .books
                .create_set(&spec.name, parent, spec.limit_bytes, &spec.kind_limits)
                .and_then(|id| match spec.high_bytes {
                    Some(high) => self.books.set_high(id, Some(high)).map(|()| id),
                    None => Ok(id),
                })
                .map_err(|error| BootError::Set {
                    set: spec.name.clone(),
                    error,
                })?;
            let _ = self.config_sets.push((spec.name.clone(), id));
        }
        // `start` comes before any endpoint or domain exists, so that after every domain has
        // ended (and the endpoints are gone) `final` shows the same free-frame count.
        self.snapshot("start");
        self.start_free_frames = self.frames.free_frames();
        let endpoint_names = self.config.endpoints.clone();
        let mut endpoint_indices = heapless::Vec::<u8, 16>::new();
        for _ in &endpoint_names {
            let index = self
                .create_endpoint(None)
                .map_err(|e| BootError::Message(e.name()))?;
            let _ = endpoint_indices.push(index);
        }
        let domains = self.config.domains.clone();
        let mut created = heapless::Vec::<usize, 16>::new();
        for (index, spec) in domains.iter().enumerate() {
            let image =
                programs::find(&spec.program).ok_or(BootError::Message("unknown program"))?;
            let program = elf::parse(image).map_err(|error| BootError::Program {
                domain: spec.name.clone(),
                program: spec.program.clone(),
                error,
            })?;
            let set = self
                .config_set(&spec.charge_set)
                .ok_or(BootError::Message("undefined charge set"))?;
            let slot = self
                .create_domain(&spec.name, set, &program, None, &[])
                .map_err(|error| BootError::Domain {
                    domain: spec.name.clone(),
                    set: spec.charge_set.clone(),
                    error,
                })?;
            self.slots[slot].boot_index = Some(index as u8);
            let _ = created.push(slot);
        }
        // An endpoint's owner (the receiver that pays for queued messages under
        // `msgbuf = receiver`) is the first domain in the config given a capability to it.
        for (name, &index) in endpoint_names.iter().zip(endpoint_indices.iter()) {
            let owner = domains
                .iter()
                .position(|d| {
                    d.caps
                        .iter()
                        .any(|c| c.target == CapSpec::Endpoint(name.clone()))
                })
                .map(|i| self.slots[created[i]].account);
            self.set_endpoint_owner(index as usize, owner);
        }
        for (spec, &slot) in domains.iter().zip(created.iter()) {
            for cap in &spec.caps {
                let object = match &cap.target {
                    // The boot-config parser refuses a capability to the kernel reserve set,
                    // and `config_set` only knows the config's own sets.
                    CapSpec::Set(name) => Object::Set(
                        self.config_set(name)
                            .ok_or(BootError::Message("undefined set"))?,
                    ),
                    CapSpec::Domain(name) => {
                        let target = domains
                            .iter()
                            .position(|d| &d.name == name)
                            .ok_or(BootError::Message("undefined domain"))?;
                        let target_slot = created[target];
                        Object::Domain {
                            slot: target_slot as u8,
                            generation: self.slots[target_slot].generation,
                        }
                    }
                    CapSpec::Endpoint(name) => {
                        let position = endpoint_names
                            .iter()
                            .position(|n| n == name)
                            .ok_or(BootError::Message("undefined endpoint"))?;
                        Object::Endpoint(endpoint_indices[position])
                    }
                };
                let capability = self.mint(object, cap.rights, 0);
                let caps = self.slots[slot]
                    .caps_mut()
                    .ok_or(BootError::Message("domain died during boot"))?;
                caps.insert(capability)
                    .map_err(|_| BootError::Message("too many capabilities"))?;
            }
            if let Some(keeper) = &spec.keeper {
                let position = endpoint_names
                    .iter()
                    .position(|n| n == keeper)
                    .ok_or(BootError::Message("undefined endpoint"))?;
                let dcb = self.slots[slot]
                    .dcb_mut()
                    .ok_or(BootError::Message("domain died during boot"))?;
                dcb.keeper = Some(endpoint_indices[position]);
            }
        }
        Ok(())
    }

    /// The config set called `name` (never the `kernel` reserve set: the boot-config parser
    /// refuses it as a parent, a domain's set or a capability).
    fn config_set(&self, name: &str) -> Option<SetId> {
        self.config_sets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }
}

/// Why the config's objects could not be created at boot.
enum BootError {
    /// A fixed reason.
    Message(&'static str),
    /// The ledger refused a charge set.
    Set {
        set: kcore::bootcfg::Name,
        error: accounting::Error,
    },
    /// A program image cannot be loaded.
    Program {
        domain: kcore::bootcfg::Name,
        program: kcore::bootcfg::Name,
        error: elf::ElfError,
    },
    /// A domain could not be created (its set's limit, memory).
    Domain {
        domain: kcore::bootcfg::Name,
        set: kcore::bootcfg::Name,
        error: Error,
    },
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            BootError::Message(text) => f.write_str(text),
            BootError::Set { set, error } => write!(f, "charge set '{set}': {error}"),
            BootError::Program {
                domain,
                program,
                error,
            } => write!(f, "program '{program}' of domain '{domain}': {error}"),
            BootError::Domain { domain, set, error } => write!(
                f,
                "domain '{domain}' cannot start in charge set '{set}': {}",
                error.name()
            ),
        }
    }
}
