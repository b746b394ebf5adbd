// Small progressive enhancements; every page works without them. Loaded from /static so that
// the Content-Security-Policy can forbid inline scripts.
document.addEventListener("click", (event) => {
  const field = event.target.closest("[data-select-on-click]");
  if (field) field.select();  // a feed link is copied whole
});

// "Copy link" buttons: shown only where the clipboard can be written; the field stays for
// copying by hand.
document.querySelectorAll("[data-copy]").forEach((button) => {
  if (!navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(field.value);
      button.textContent = button.dataset.copied;
    } catch (error) {
      field.select();  // refused (no permission): selected, ready for Ctrl+C
    }
  });
});

// A destructive form asks first (data-confirm holds the question, in the reader's language).
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// A form that changes something is sent once: a double click on "Book" made two bookings, two
// waitlist entries, two programmes. Buttons are not disabled (the clicked one's name and value
// must still be sent); a second submit is ignored until the page is shown again (back button).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || (form.getAttribute("method") || "").toLowerCase() !== "post") return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
});
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-sent]").forEach((form) => delete form.dataset.sent);
});

// The booking form's price follows the slot, quantity and repetition as they change: the
// server renders the estimate (the same fragment "Check and estimate" shows without JS).
const bookingForm = document.querySelector("form.booking-form[data-estimate-url]");
if (bookingForm) {
  const target = document.getElementById("estimate-live");
  let timer = null;
  let asked = 0;
  const refresh = async () => {
    const fields = new URLSearchParams(new FormData(bookingForm));
    fields.delete("csrf_token");
    fields.delete("purpose");  // not needed for a price, and may be long
    const mine = ++asked;
    try {
      const response = await fetch(`${bookingForm.dataset.estimateUrl}?${fields}`, {
        headers: { Accept: "text/html" },
      });
      // A signed-out session is redirected to the sign-in page: not a price to show.
      if (response.ok && !response.redirected && mine === asked) {
        target.innerHTML = await response.text();
      }
    } catch (error) {
      // offline or refused: the last estimate stays; "Check and estimate" still works
    }
  };
  bookingForm.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  bookingForm.addEventListener("change", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 100);
  });
  if (!target.querySelector("#estimate")) refresh();  // a slot picked on the grid
}

// Phones: the menu folds behind a button (CSS shows the button's effect below 720 px only).
const menuButton = document.querySelector(".menu-button");
if (menuButton) {
  const topbar = menuButton.closest(".topbar");
  topbar.classList.add("collapsible");
  menuButton.hidden = false;
  menuButton.addEventListener("click", () => {
    const open = topbar.classList.toggle("open");
    menuButton.setAttribute("aria-expanded", String(open));
  });
}

// The week grid is one tab stop: arrow keys move between its free cells, Enter opens the
// form at one (a roving tabindex; without JavaScript every free cell is a tab stop).
const week = document.querySelector("table.week");
if (week) {
  const rows = [...week.querySelectorAll("tbody tr")].map((tr) => [...tr.querySelectorAll("td")]);
  const links = week.querySelectorAll("td a");
  links.forEach((link, index) => { link.tabIndex = index === 0 ? 0 : -1; });
  week.addEventListener("keydown", (event) => {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const move = moves[event.key];
    const cell = move && event.target.closest("td");
    if (!cell) return;
    let r = rows.findIndex((row) => row.includes(cell));
    let c = rows[r].indexOf(cell);
    event.preventDefault();
    for (;;) {  // the next free cell that way, over busy and closed ones
      r += move[0];
      c += move[1];
      const next = rows[r] && rows[r][c];
      if (!next) return;
      const link = next.querySelector("a");
      if (link) {
        event.target.tabIndex = -1;
        link.tabIndex = 0;
        link.focus();
        return;
      }
    }
  });
}

// A table wider than the screen scrolls inside itself (style.css): it takes the keyboard's
// focus, so that arrow keys can scroll it too.
const markScrollable = () => {
  document.querySelectorAll("main table").forEach((table) => {
    const scrolls = table.scrollWidth > table.clientWidth + 1;
    if (scrolls) table.tabIndex = 0;
    else table.removeAttribute("tabindex");
  });
};
markScrollable();
window.addEventListener("resize", markScrollable);

// The kiosk page at the instrument keeps its countdowns current: it reloads every minute
// unless someone is filling in its form.
const kiosk = document.querySelector("[data-refresh]");
if (kiosk) {
  setInterval(() => {
    if (!kiosk.contains(document.activeElement) || document.activeElement === document.body) {
      window.location.reload();
    }
  }, Number(kiosk.dataset.refresh) * 1000);
}

// Picking a range on the week grid (#16): the first free cell picked is the start, a later
// one the end (or drag from one to the other); the booking form is filled in on the page and
// its price follows. A single pick books the resource's shortest length. Without JavaScript
// each cell is a link that opens the form at its start.
const pickGrid = document.querySelector("table.week");
const pickForm = document.querySelector("form.booking-form");
if (pickGrid && pickForm) {
  const minutesOf = (clock) => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));
  const clockOf = (minutes) =>
    `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
  const dayAfter = (iso, days) => {
    const d = new Date(`${iso}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
  };
  // A local day and a minute of it (which may run past midnight) as [day, "HH:MM"].
  const moment = (day, minutes) => [dayAfter(day, Math.floor(minutes / 1440)), clockOf(minutes % 1440)];
  const key = (cell) => `${cell.dataset.day} ${cell.dataset.from}`;
  const shortest = Number(pickGrid.dataset.minMinutes) || 0;
  const cells = [...pickGrid.querySelectorAll("a[data-day]")];
  const said = document.getElementById("grid-selection");
  let anchor = null;
  let dragFrom = null;

  const fill = (first, last) => {
    const from = minutesOf(first.dataset.from);
    const [endDay, endTime] = last === first
      ? moment(first.dataset.day, Math.max(from + shortest, minutesOf(first.dataset.until)))
      : moment(last.dataset.day, minutesOf(last.dataset.until));  // "24:00": the next midnight
    pickForm.elements.day.value = first.dataset.day;
    pickForm.elements.start_time.value = first.dataset.from;
    pickForm.elements.end_time.value = endTime;
    pickForm.elements.end_day.value = endDay === first.dataset.day ? "" : endDay;
    cells.forEach((cell) => {
      const inside = key(cell) >= key(first) && key(cell) <= key(last);
      cell.closest("td").classList.toggle("picked", inside);
    });
    said.textContent = `${first.getAttribute("aria-label")} → ${endDay} ${endTime}`;
    pickForm.dispatchEvent(new Event("change", { bubbles: true }));  // the price follows
  };

  const pick = (cell) => {
    if (anchor && key(cell) > key(anchor)) {
      fill(anchor, cell);
      anchor = null;
    } else {
      fill(cell, cell);
      anchor = cell;
    }
  };

  pickGrid.addEventListener("click", (event) => {
    const cell = event.target.closest("a[data-day]");
    if (!cell) return;
    event.preventDefault();
    pick(cell);
  });
  pickGrid.addEventListener("mousedown", (event) => {
    const cell = event.target.closest("a[data-day]");
    dragFrom = cell || null;
    if (cell) event.preventDefault();  // no link drag
  });
  pickGrid.addEventListener("mouseup", (event) => {
    const cell = event.target.closest("a[data-day]");
    if (dragFrom && cell && cell !== dragFrom) {  // a plain click is picked on "click"
      const [first, last] = key(cell) > key(dragFrom) ? [dragFrom, cell] : [cell, dragFrom];
      fill(first, last);
      anchor = null;
    }
    dragFrom = null;
  });
}
