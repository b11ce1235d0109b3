// Package atomicfile writes small files that must survive a crash whole: a
// key, a committee's chain state. The bytes go to a temporary file beside
// the final name and are synced; the file is then linked or renamed into
// place and the folder is synced, so a crash at any moment leaves either
// no new file (or the old one) or the whole new one, never a part.
package atomicfile
