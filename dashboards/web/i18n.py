"""The UI's words in Bahasa Indonesia (the default) and English, and how a request picks one."""

from __future__ import annotations

from typing import Literal

Language = Literal["id", "en"]
LANGUAGES: tuple[Language, ...] = ("id", "en")
DEFAULT_LANGUAGE: Language = "id"
COOKIE = "siaga_lang"

# key -> (Bahasa Indonesia, English)
STRINGS: dict[str, tuple[str, str]] = {
    "app.title": ("Siaga: pemantauan banjir", "Siaga: flood monitoring"),
    "nav.overview": ("Ikhtisar", "Overview"),
    "nav.incidents": ("Insiden", "Incidents"),
    "nav.audit": ("Log audit", "Audit log"),
    "nav.login": ("Masuk", "Sign in"),
    "nav.logout": ("Keluar", "Sign out"),
    "nav.language": ("Bahasa", "Language"),
    "live.connected": ("Langsung", "Live"),
    "live.disconnected": ("Terputus, menyambung ulang…", "Disconnected, reconnecting…"),
    "level.NORMAL": ("Normal", "Normal"),
    "level.WASPADA": ("Waspada", "Alert"),
    "level.SIAGA": ("Siaga", "Standby"),
    "level.AWAS": ("Awas", "Danger"),
    "level.unknown": ("Tidak ada data", "No data"),
    "overview.stations": ("Pos pemantauan", "Stations"),
    "overview.active": ("Insiden aktif", "Active incidents"),
    "overview.none_active": ("Tidak ada insiden aktif", "No active incidents"),
    "overview.map": ("Peta pos dan sungai", "Map of stations and rivers"),
    "col.station": ("Pos", "Station"),
    "col.river": ("Sungai", "River"),
    "col.regency": ("Kabupaten/Kota", "Regency"),
    "col.level": ("Tinggi muka air", "Water level"),
    "col.status": ("Status", "Status"),
    "col.trend": ("Laju (cm/jam)", "Rate (cm/h)"),
    "col.stale": ("Data terakhir", "Last data"),
    "sort.by": ("Urutkan", "Sort by"),
    "sort.level": ("Tingkat", "Level"),
    "sort.trend": ("Laju naik", "Rise rate"),
    "sort.stale": ("Keusangan", "Staleness"),
    "sort.name": ("Nama", "Name"),
    "age.now": ("baru saja", "just now"),
    "age.s": ("{n} dtk lalu", "{n} s ago"),
    "age.min": ("{n} mnt lalu", "{n} min ago"),
    "age.h": ("{n} jam lalu", "{n} h ago"),
    "age.d": ("{n} hari lalu", "{n} d ago"),
    "stale": ("usang", "stale"),
    "station.back": ("← Ikhtisar", "← Overview"),
    "station.range": ("Rentang", "Range"),
    "station.time": ("Waktu", "Time"),
    "station.expected": ("perkiraan tiba", "expected"),
    "station.water": ("Tinggi muka air (cm)", "Water level (cm)"),
    "station.rain": ("Curah hujan (mm)", "Rain (mm)"),
    "station.battery": ("Baterai (V)", "Battery (V)"),
    "station.signal": ("Sinyal (dBm)", "Signal (dBm)"),
    "station.upstream": ("Hulu", "Upstream"),
    "station.downstream": ("Hilir", "Downstream"),
    "station.wave": ("Gelombang dari hulu", "Wave from upstream"),
    "station.arrival": (
        "{name}: {value} cm ({level}) pada {at}; tiba di sini sekitar {arrival} (+{travel})",
        "{name}: {value} cm ({level}) at {at}; expected here about {arrival} (+{travel})",
    ),
    "station.no_upstream": ("Tidak ada pos hulu", "No upstream station"),
    "station.incidents": ("Insiden pos ini", "This station's incidents"),
    "station.thresholds": ("Batas", "Thresholds"),
    "station.latest": ("Terbaru", "Latest"),
    "station.health": ("Kesehatan perangkat", "Device health"),
    "health.completeness": ("Kelengkapan 24 jam", "Completeness 24 h"),
    "health.battery": ("Baterai", "Battery"),
    "health.signal": ("Sinyal", "Signal"),
    "health.skew": ("Selisih jam", "Clock skew"),
    "health.backdated": (
        "Data terlambat (putar ulang, simulasi atau kiriman tertunda): kelengkapan dan selisih "
        "jam menggambarkan pengiriman itu, bukan kerusakan alat.",
        "Back-dated readings (a replay, a simulation or a delayed backlog): completeness and "
        "clock skew describe that delivery, not a faulty device.",
    ),
    "station.zone": ("Zona waktu", "Time zone"),
    "station.no_data": ("Belum ada data dalam rentang ini", "No data in this range yet"),
    "station.not_found": ("Pos tidak ditemukan", "Station not found"),
    "audit.title": ("Log audit", "Audit log"),
    "audit.none": ("Belum ada perubahan tercatat", "No changes recorded yet"),
    "audit.forbidden": (
        "Log audit hanya untuk admin wilayah ini",
        "The audit log is for this scope's admins only",
    ),
    "audit.from": ("dari {ip}", "from {ip}"),
    "audit.more": ("Lebih lama", "Older"),
    "audit.incident.acknowledge": ("mengakui insiden", "acknowledged incident"),
    "audit.incident.assign": ("menugaskan insiden", "assigned incident"),
    "audit.silence.add": ("membisukan (senyap)", "added silence"),
    "audit.silence.expire": ("mengakhiri senyap", "ended silence"),
    "audit.user.add": ("menambah pengguna", "added user"),
    "audit.user.remove": ("menghapus pengguna", "removed user"),
    "audit.api_key.add": ("membuat kunci API", "created API key"),
    "audit.api_key.remove": ("mencabut kunci API", "revoked API key"),
    "audit.policy.update": ("mengubah kebijakan notifikasi", "changed notification policy"),
    "nav.policy": ("Kebijakan notifikasi", "Notification policy"),
    "policy.title": ("Kebijakan notifikasi kabupaten", "Regency notification policy"),
    "policy.help": (
        "Penerima, grup, rute dan eskalasi kabupaten ini (JSON). Berkas kebijakan deployment "
        "tetap berlaku untuk kabupaten tanpa kebijakan sendiri.",
        "This regency's recipients, groups, routes and escalations (JSON). The deployment's "
        "policy file still applies to regencies without a policy of their own.",
    ),
    "policy.regency": ("Kabupaten", "Regency"),
    "policy.load": ("Muat", "Load"),
    "policy.document": ("Dokumen kebijakan", "Policy document"),
    "policy.save": ("Simpan versi baru", "Save a new version"),
    "policy.saved": ("Tersimpan", "Saved"),
    "policy.version": ("Versi {n}, oleh {by}", "Version {n}, by {by}"),
    "policy.file_default": (
        "Belum ada kebijakan sendiri: berkas deployment berlaku",
        "No policy of its own yet: the deployment's file applies",
    ),
    "policy.not_yours": (
        "Kabupaten ini tidak ada dalam wilayah Anda",
        "This regency is not in your scope",
    ),
    "scope.deployment": ("seluruh deployment", "whole deployment"),
    "scope.province": ("provinsi {name}", "province {name}"),
    "incidents.title": ("Insiden", "Incidents"),
    "incidents.active": ("Aktif", "Active"),
    "incidents.all": ("Semua", "All"),
    "incidents.none": ("Tidak ada insiden", "No incidents"),
    "incidents.opened": ("Dibuka", "Opened"),
    "incidents.resolved": ("Selesai", "Resolved"),
    "incidents.state.pending": ("menunggu", "pending"),
    "incidents.state.firing": ("aktif", "firing"),
    "incidents.state.resolved": ("selesai", "resolved"),
    "incidents.acked_by": ("Diakui oleh {by} pada {at}", "Acknowledged by {by} at {at}"),
    "incidents.assigned_to": ("Ditugaskan ke {who}", "Assigned to {who}"),
    "incidents.expected": ("Perkiraan tiba {at}", "Expected at {at}"),
    "incidents.ack": ("Akui", "Acknowledge"),
    "incidents.comment": ("Komentar", "Comment"),
    "incidents.assign": ("Tugaskan", "Assign"),
    "incidents.assignee": ("Petugas", "Assignee"),
    "incidents.silence": ("Bisukan", "Silence"),
    "incidents.silence_min": ("Durasi (menit)", "Duration (min)"),
    "incidents.silence_why": ("Alasan membisukan", "Why silence"),
    "incidents.silenced": ("Notifikasi dibisukan sampai {at}", "Notifications silenced until {at}"),
    "incidents.done": ("Tersimpan", "Saved"),
    "incidents.forbidden": ("Peran Anda tidak boleh melakukan ini", "Your role may not do this"),
    "kind.level": ("tinggi air", "water level"),
    "kind.rate": ("laju naik", "rise rate"),
    "kind.upstream": ("gelombang hulu", "upstream wave"),
    "kind.no_data": ("tidak ada data", "no data"),
    "kind.sensor_fault": ("sensor rusak", "sensor fault"),
    "login.title": ("Masuk ke Siaga", "Sign in to Siaga"),
    "login.username": ("Nama pengguna", "Username"),
    "login.password": ("Kata sandi", "Password"),
    "login.submit": ("Masuk", "Sign in"),
    "login.failed": ("Nama pengguna atau kata sandi salah", "Wrong username or password"),
    "login.limited": (
        "Terlalu banyak percobaan; coba lagi nanti",
        "Too many attempts; try again later",
    ),
    "error.load": ("Gagal memuat data", "Could not load data"),
    "range.6h": ("6 jam", "6 h"),
    "range.24h": ("24 jam", "24 h"),
    "range.3d": ("3 hari", "3 d"),
    "range.7d": ("7 hari", "7 d"),
    "range.30d": ("30 hari", "30 d"),
    "range.90d": ("90 hari", "90 d"),
}


def pick_language(query: str | None, cookie: str | None) -> Language:
    """The language a request asked for: ``?lang=`` first, then the cookie, else Indonesian."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


def strings(language: Language) -> dict[str, str]:
    """Every UI string in one language."""
    index = LANGUAGES.index(language)
    return {key: pair[index] for key, pair in STRINGS.items()}
