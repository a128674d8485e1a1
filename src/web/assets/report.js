/*
 * report.js — the reporter page's only script, and an optional one: the
 * page works without it.  It hides the questions whose condition (show_if)
 * is not met and disables their inputs, so that they are not posted.
 */
(function () {
	'use strict';
	var form = document.querySelector('form.report');
	if (!form)
		return;
	document.documentElement.className = 'js';

	/* the values given for question k: checked choices, or a filled field */
	function values(k) {
		var out = [];
		form.querySelectorAll('[name="q.' + k + '"]').forEach(function (e) {
			if (e.disabled)
				return;
			if (e.type === 'radio' || e.type === 'checkbox') {
				if (e.checked)
					out.push(e.value);
			} else if (e.value !== '')
				out.push(e.value);
		});
		return out;
	}

	/* in document order, so that a condition on a hidden question hides its own */
	function update() {
		form.querySelectorAll('fieldset[data-if]').forEach(function (set) {
			var wanted = JSON.parse(set.getAttribute('data-in'));
			var on = values(set.getAttribute('data-if')).some(function (v) {
				return wanted.indexOf(v) >= 0;
			});
			set.hidden = !on;
			set.querySelectorAll('input, textarea').forEach(function (e) {
				e.disabled = !on;
			});
		});
	}

	form.addEventListener('change', update);
	update();
})();
