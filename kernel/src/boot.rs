//! Boot: console, device tree, boot config, kernel map, frame table, interrupts, timer,
//! then the domains the config declares, and into the first one.

use crate::arch::aarch64::{cpu, mmu};
use crate::{console, println, programs};
use devicetree as dtb;
use kcore::bootcfg;

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
    crate::kernel::start(ram, image_end, config)
}
