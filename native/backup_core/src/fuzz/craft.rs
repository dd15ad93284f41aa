//! Hand-made tar streams, including the hostile ones no tar writer would make (huge declared
//! lengths, sparse maps, extension headers without an entry), and their gzip/zstd wrappings:
//! the seeds and bombs of the fuzz harness, the regression tests and `zbackup fuzz`.
//!
//! Every header field is set through the `tar` crate's `Header`; only names are copied into the
//! raw fields (any bytes, no checks), because hostile names are the point.

use std::io::{self, Write};

const BLOCK: usize = 512;

/// A tar stream being built in memory.
#[derive(Default, Clone)]
pub struct TarBuilder {
    pub buf: Vec<u8>,
}

/// Header fields of one crafted block.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    pub name: &'a [u8],
    pub typ: u8,
    pub size: u64,
    pub mode: u32,
    pub mtime: u64,
    pub link: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(name: &'a [u8], typ: u8, size: u64) -> Self {
        Fields {
            name,
            typ,
            size,
            mode: 0o644,
            mtime: 1_700_000_000,
            link: b"",
        }
    }
}

/// One GNU header block with `f`, its checksum set.
pub fn header_block(f: &Fields<'_>) -> [u8; BLOCK] {
    let mut h = tar::Header::new_gnu();
    if let Some(gnu) = h.as_gnu_mut() {
        let n = f.name.len().min(100);
        gnu.name[..n].copy_from_slice(&f.name[..n]);
        let l = f.link.len().min(100);
        gnu.linkname[..l].copy_from_slice(&f.link[..l]);
    }
    h.set_mode(f.mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(f.mtime);
    h.set_size(f.size);
    h.set_entry_type(tar::EntryType::new(f.typ));
    h.set_cksum();
    *h.as_bytes()
}

/// Recomputes the checksum of a (mutated) header block in place.
pub fn fix_checksum(block: &mut [u8]) {
    if block.len() < BLOCK {
        return;
    }
    block[148..156].fill(b' ');
    let sum: u32 = block[..BLOCK].iter().map(|&b| u32::from(b)).sum();
    let field = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(field.as_bytes());
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder::default()
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn header(&mut self, f: &Fields<'_>) -> &mut Self {
        let b = header_block(f);
        self.raw(&b)
    }

    /// `data`, zero-padded to a block boundary.
    pub fn data(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.buf.resize(self.buf.len() + pad, 0);
        self
    }

    fn long(&mut self, typ: u8, value: &[u8]) -> &mut Self {
        let mut v = value.to_vec();
        v.push(0);
        self.header(&Fields::new(b"././@LongLink", typ, v.len() as u64))
            .data(&v)
    }

    /// An entry named `name` (a GNU long name entry first when it needs one).
    pub fn entry(&mut self, f: &Fields<'_>, data: &[u8]) -> &mut Self {
        if f.name.len() > 100 {
            self.long(b'L', f.name);
        }
        if f.link.len() > 100 {
            self.long(b'K', f.link);
        }
        self.header(f).data(data)
    }

    pub fn file(&mut self, name: &[u8], data: &[u8]) -> &mut Self {
        self.entry(&Fields::new(name, b'0', data.len() as u64), data)
    }

    pub fn file_mode(&mut self, name: &[u8], data: &[u8], mode: u32) -> &mut Self {
        let mut f = Fields::new(name, b'0', data.len() as u64);
        f.mode = mode;
        self.entry(&f, data)
    }

    pub fn dir(&mut self, name: &[u8], mode: u32) -> &mut Self {
        let mut f = Fields::new(name, b'5', 0);
        f.mode = mode;
        self.entry(&f, b"")
    }

    pub fn symlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        let mut f = Fields::new(name, b'2', 0);
        f.link = target;
        f.mode = 0o777;
        self.entry(&f, b"")
    }

    pub fn hardlink(&mut self, name: &[u8], target: &[u8]) -> &mut Self {
        let mut f = Fields::new(name, b'1', 0);
        f.link = target;
        self.entry(&f, b"")
    }

    /// A device (`3` char, `4` block) or FIFO (`6`) entry.
    pub fn special(&mut self, name: &[u8], typ: u8) -> &mut Self {
        self.entry(&Fields::new(name, typ, 0), b"")
    }

    /// A PAX extended header (`x`) with these records, for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let body = pax_records(records);
        self.header(&Fields::new(b"././@PaxHeader", b'x', body.len() as u64))
            .data(&body)
    }

    /// An old-GNU sparse file (`S`): `segments` (offset, length) of `real` bytes, whose data
    /// is `data` (their concatenation); extension blocks follow when there are more than 4.
    pub fn sparse(
        &mut self,
        name: &[u8],
        real: u64,
        segments: &[(u64, u64)],
        data: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::from_byte_slice(&header_block(&Fields::new(
            name,
            b'S',
            data.len() as u64,
        )))
        .clone();
        let (first, rest) = segments.split_at(segments.len().min(4));
        if let Some(gnu) = h.as_gnu_mut() {
            for (slot, &(off, len)) in gnu.sparse.iter_mut().zip(first) {
                slot.set_offset(off);
                slot.set_length(len);
            }
            gnu.set_real_size(real);
            gnu.set_is_extended(!rest.is_empty());
        }
        h.set_cksum();
        self.raw(h.as_bytes());
        let chunks: Vec<&[(u64, u64)]> = rest.chunks(21).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut ext = tar::GnuExtSparseHeader::new();
            for (slot, &(off, len)) in ext.sparse.iter_mut().zip(chunk.iter()) {
                slot.set_offset(off);
                slot.set_length(len);
            }
            ext.set_is_extended(i + 1 < chunks.len());
            self.raw(ext.as_bytes());
        }
        self.data(data)
    }

    /// The end-of-archive marker.
    pub fn end(&mut self) -> &mut Self {
        self.raw(&[0u8; 2 * BLOCK])
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// PAX records `"<len> key=value\n"`.
pub fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body_len = 1 + k.len() + 1 + v.len() + 1;
        let mut len = body_len + 1;
        while len != body_len + len.to_string().len() {
            len = body_len + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// zstd of `data` as independent frames of `frame` bytes (each with its checksum), optionally
/// starting with the engine's manifest marker frame. Returns the bytes and the offsets at which
/// each frame starts.
pub fn zstd_frames(data: &[u8], frame: usize, marker: bool) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut starts = Vec::new();
    if marker {
        out.extend_from_slice(&crate::archive::zstd_marker_frame());
    }
    for chunk in data.chunks(frame.max(1)) {
        starts.push(out.len());
        let mut c = match zstd::bulk::Compressor::new(1) {
            Ok(c) => c,
            Err(_) => return (out, starts),
        };
        let _ = c.include_checksum(true);
        if let Ok(z) = c.compress(chunk) {
            out.extend_from_slice(&z);
        }
    }
    (out, starts)
}

/// A `.tar.zst` whose one file of `size` zero bytes is made of zstd RLE blocks (4 bytes per
/// 128 KiB): about 32 bytes of archive per MiB of data. Written to `w` as it is made.
pub fn write_zstd_zero_bomb(w: &mut dyn Write, name: &[u8], size: u64) -> io::Result<()> {
    const BLOCK_MAX: u64 = 128 << 10;
    // Frame header: magic, descriptor 0 (no content size, no checksum), window 128 KiB.
    w.write_all(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38])?;
    let raw_block = |w: &mut dyn Write, bytes: &[u8], last: bool| -> io::Result<()> {
        let h = ((bytes.len() as u32) << 3) | u32::from(last);
        w.write_all(&h.to_le_bytes()[..3])?;
        w.write_all(bytes)
    };
    let rle = |w: &mut dyn Write, n: u64, last: bool| -> io::Result<()> {
        let h = ((n as u32) << 3) | (1 << 1) | u32::from(last);
        w.write_all(&h.to_le_bytes()[..3])?;
        w.write_all(&[0])
    };
    raw_block(w, &header_block(&Fields::new(name, b'0', size)), false)?;
    let mut left = size.div_ceil(BLOCK as u64) * BLOCK as u64 + 2 * BLOCK as u64;
    while left > 0 {
        let n = left.min(BLOCK_MAX);
        left -= n;
        rle(w, n, left == 0)?;
    }
    Ok(())
}

/// The bomb archives of issue 14, small enough to build in a test (each declares far more than
/// it holds, or holds far more than it is big): (name, archive bytes).
pub fn bombs() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // 1. a sparse file with a 2^60-byte hole
    let t = TarBuilder::new()
        .sparse(b"./hole", 1 << 60, &[(0, 512), (1 << 60, 0)], &[7u8; 512])
        .end()
        .finish();
    out.push(("sparse_hole_2p60.tar.gz", gzip(&t)));
    out.push((
        "sparse_hole_2p60.tar.zst",
        zstd_frames(&t, 1 << 20, false).0,
    ));
    // 2. a GNU long name declaring 1 GiB, with 8 MiB of it present
    let mut t = TarBuilder::new();
    t.header(&Fields::new(b"././@LongLink", b'L', 1 << 30));
    t.raw(&vec![b'a'; 8 << 20]);
    out.push(("longname_1gib.tar.gz", gzip(&t.finish())));
    // 3. a PAX header declaring 1 GiB
    let mut t = TarBuilder::new();
    t.header(&Fields::new(b"././@PaxHeader", b'x', 1 << 30));
    t.raw(&vec![b'9'; 8 << 20]);
    out.push(("pax_1gib.tar.gz", gzip(&t.finish())));
    // 4. a manifest trailer declaring a 1 GiB body and 2^40 entries
    let mut t = TarBuilder::new();
    t.file(b"./a", b"x").end();
    t.raw(&crate::archive::manifest::trailer_header(
        1 << 40,
        1 << 30,
        0,
    ));
    t.raw(&vec![0x41; 4 << 20]);
    out.push(("manifest_1gib.tar.gz", gzip(&t.finish())));
    // 5. a manifest trailer of the right count whose one record claims a 4 GiB name
    let mut t = TarBuilder::new();
    t.file(b"./a", b"x").end();
    let mut body = vec![0u8; 29];
    body[25..29].copy_from_slice(&u32::MAX.to_le_bytes());
    t.raw(&crate::archive::manifest::trailer_header(1, 1 << 30, 0));
    t.raw(&body);
    t.raw(&vec![0x41; 1 << 20]);
    out.push(("manifest_record_4gib.tar.gz", gzip(&t.finish())));
    // 6. a sparse map of endless extension blocks
    let mut t = TarBuilder::new();
    let mut h =
        tar::Header::from_byte_slice(&header_block(&Fields::new(b"./map", b'S', 0))).clone();
    if let Some(gnu) = h.as_gnu_mut() {
        gnu.set_real_size(1 << 20);
        gnu.set_is_extended(true);
    }
    h.set_cksum();
    t.raw(h.as_bytes());
    let mut ext = tar::GnuExtSparseHeader::new();
    ext.set_is_extended(true);
    for _ in 0..200_000 {
        t.raw(ext.as_bytes());
    }
    out.push(("sparse_map_endless.tar.gz", gzip(&t.finish())));
    // 7. a regular file declaring 2^62 bytes with a few MiB present
    let mut t = TarBuilder::new();
    t.header(&Fields::new(b"./huge", b'0', 1 << 62));
    t.raw(&vec![0u8; 4 << 20]);
    out.push(("file_2p62_truncated.tar.gz", gzip(&t.finish())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crafted_archives_read_back_with_gnu_tar() {
        let d = tempfile::tempdir().expect("tmp");
        let t = TarBuilder::new()
            .dir(b"./", 0o755)
            .file(b"./a.txt", b"hello")
            .file(format!("./{}", "n".repeat(150)).as_bytes(), b"long")
            .symlink(b"./l", b"a.txt")
            .hardlink(b"./h", b"./a.txt")
            .pax(&[("path", b"./p\nq")])
            .file(b"./ignored", b"pax")
            .sparse(b"./s", 3000, &[(1024, 512), (2048, 512)], &[1u8; 1024])
            .end()
            .finish();
        let p = d.path().join("x.tar");
        std::fs::write(&p, &t).expect("write");
        let o = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&p)
            .output()
            .expect("tar");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let listing = String::from_utf8_lossy(&o.stdout);
        assert!(
            listing.contains("./s") && listing.contains("3000"),
            "{listing}"
        );
    }
}
