// The billing page: the card is saved with a SetupIntent, then the server charges it.
// Credits arrive only when Stripe's signed event reaches the server.
//
// With Stripe's own Stripe.js its Card Element collects the card. With localstripe's fake
// (the embedded default) the page has its own labelled fields, checked here before
// anything is sent: the fake's bare inputs jump between fields as digits are typed and
// take only a 2-digit year, and it answers any mistake with "Bad request".
(function () {
  const config = document.getElementById('billing-config').dataset;
  const message = document.getElementById('payment-message');
  const stripe = Stripe(config.publishableKey);
  const localFields = document.getElementById('card-fields');
  let cardElement = null;
  if (!localFields) {
    cardElement = stripe.elements().create('card');
    cardElement.mount('#card-element');
  }

  // Where the person is looking: under the button they pressed.
  function show(text, kind, button) {
    if (button) {
      button.closest('li, td, form, section').appendChild(message);
    }
    message.textContent = text;
    message.className = 'message ' + (kind || '');
    message.hidden = false;
    message.scrollIntoView({block: 'nearest'});
  }

  function setBusy(busy) {
    document.querySelectorAll('button.buy-pack, button.subscribe, #save-card').forEach(function (b) {
      b.disabled = busy;
    });
  }

  async function post(url, fields) {
    const body = new FormData();
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    const response = await fetch(url, {
      method: 'POST',
      body: body,
      headers: {'X-CSRFToken': config.csrfToken, 'Accept': 'application/json'},
      credentials: 'same-origin',
    });
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      if (data.message) throw new Error(data.message);
      if (response.status === 403) {
        throw new Error('Only owners and admins of this organization can buy credits or change the plan.');
      }
      throw new Error('The server could not complete this (error ' + response.status + '). Try again in a moment.');
    }
    return data;
  }

  // --- localstripe: our own fields -----------------------------------------------------

  const input = function (name) { return document.getElementById('card-' + name); };
  const digits = function (value) { return value.replace(/[\s-]/g, ''); };

  function luhnValid(number) {
    let sum = 0;
    for (let i = 0; i < number.length; i++) {
      let d = Number(number[number.length - 1 - i]);
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  // The number shows in groups of four however it is typed or pasted.
  function formatNumber() {
    const field = input('number');
    const caretDigits = digits(field.value.slice(0, field.selectionStart)).length;
    const grouped = digits(field.value).replace(/(.{4})(?=.)/g, '$1 ');
    if (grouped === field.value) return;
    field.value = grouped;
    let caret = 0;
    for (let seen = 0; caret < grouped.length && seen < caretDigits; caret++) {
      if (grouped[caret] !== ' ') seen++;
    }
    field.setSelectionRange(caret, caret);
  }

  function cardErrors() {
    const errors = {};
    const number = digits(input('number').value);
    if (!number) errors.number = 'Enter the card number.';
    else if (!/^[0-9]+$/.test(number)) errors.number = 'The card number can only contain digits.';
    else if (number.length !== 16) errors.number = 'The card number has 16 digits; this one has ' + number.length + '.';
    else if (!luhnValid(number)) errors.number = 'This card number is not valid: check it for a typo.';

    const monthText = input('exp-month').value.trim();
    const month = Number(monthText);
    if (!monthText) errors['exp-month'] = 'Enter the expiry month.';
    else if (!/^[0-9]{1,2}$/.test(monthText) || month < 1 || month > 12) {
      errors['exp-month'] = 'The month is a number from 1 to 12.';
    }

    const yearText = input('exp-year').value.trim();
    let year = Number(yearText);
    if (!yearText) errors['exp-year'] = 'Enter the expiry year.';
    else if (!/^([0-9]{2}|[0-9]{4})$/.test(yearText)) {
      errors['exp-year'] = 'Enter the year as 4 digits (2030) or 2 (30).';
    } else {
      if (yearText.length === 2) year += 2000;
      const now = new Date();
      const expired = year < now.getFullYear() ||
        (year === now.getFullYear() && !errors['exp-month'] && month < now.getMonth() + 1);
      if (expired) errors['exp-year'] = 'This card has expired.';
    }

    const cvc = input('cvc').value.trim();
    if (!cvc) errors.cvc = 'Enter the CVC, the 3 digits on the back of the card.';
    else if (!/^[0-9]{3}$/.test(cvc)) errors.cvc = 'The CVC is 3 digits.';
    return {errors: errors, card: {number: number, exp_month: month, exp_year: year, cvc: cvc}};
  }

  function showFieldErrors(errors) {
    ['number', 'exp-month', 'exp-year', 'cvc'].forEach(function (name) {
      const note = document.getElementById('card-' + name + '-error');
      note.textContent = errors[name] || '';
      note.hidden = !errors[name];
      input(name).setAttribute('aria-invalid', errors[name] ? 'true' : 'false');
    });
  }

  if (localFields) {
    input('number').addEventListener('input', formatNumber);
  }

  // The card as confirmCardSetup takes it, or an Error that says what to fix.
  function cardToSave() {
    if (!localFields) return {card: cardElement};
    const checked = cardErrors();
    showFieldErrors(checked.errors);
    const problems = Object.values(checked.errors);
    const typed = ['number', 'exp-month', 'exp-year', 'cvc'].some(function (name) {
      return input(name).value.trim();
    });
    if (!typed) {
      throw new Error('Enter your card in the “Your card” form above first: its number, expiry date and CVC.');
    }
    if (problems.length) {
      throw new Error('Check the card details: ' + problems.join(' '));
    }
    return {
      card: checked.card,
      billing_details: {address: {postal_code: input('postal-code').value.trim()}},
    };
  }

  function cardError(error) {
    // localstripe says only "Bad request" for card details it refuses.
    if (!error || !error.message || error.message === 'Bad request') {
      return 'Stripe refused these card details: check the number, expiry date and CVC.';
    }
    return error.message;
  }

  async function saveCard() {
    const paymentMethod = cardToSave();
    const setup = await post(config.cardSetupUrl, {});
    const result = await stripe.confirmCardSetup(setup.client_secret, {payment_method: paymentMethod});
    if (result.error) throw new Error(cardError(result.error));
    return result.setupIntent.id;
  }

  document.querySelectorAll('button.buy-pack').forEach(function (button) {
    button.addEventListener('click', async function () {
      setBusy(true);
      show('Processing your payment…', '', button);
      try {
        const setupIntent = await saveCard();
        const result = await post(button.dataset.url, {token: button.dataset.token, setup_intent: setupIntent});
        if (result.status === 'requires_action') {
          const auth = await stripe.confirmCardPayment(result.client_secret);
          if (auth.error) { throw new Error(auth.error.message || 'Authentication failed.'); }
        } else if (result.status === 'failed') {
          throw new Error(result.message || 'The payment failed.');
        }
        show('Payment received. Your credits appear as soon as Stripe confirms it.', 'success', button);
        setTimeout(function () { window.location.reload(); }, 2500);
      } catch (error) {
        show(error.message, 'error', button);
        setBusy(false);
      }
    });
  });

  const saveCardButton = document.getElementById('save-card');
  saveCardButton.addEventListener('click', async function () {
    setBusy(true);
    show('Saving your card…', '', saveCardButton);
    try {
      const setupIntent = await saveCard();
      const result = await post(config.saveCardUrl, {setup_intent: setupIntent});
      document.getElementById('saved-card').textContent =
        'Saved card: ' + result.card + ', expires ' + result.expiry + '.';
      saveCardButton.textContent = 'Replace card';
      show(result.message, 'success', saveCardButton);
    } catch (error) {
      show(error.message, 'error', saveCardButton);
    }
    setBusy(false);
  });

  // For the page's other forms that charge the card (auto_recharge.js).
  window.imagenBilling = {saveCard: saveCard, post: post, show: show, setBusy: setBusy};

  document.querySelectorAll('button.subscribe').forEach(function (button) {
    button.addEventListener('click', async function () {
      if (!window.confirm(button.dataset.confirm)) return;
      setBusy(true);
      show('Starting your subscription…', '', button);
      try {
        const setupIntent = await saveCard();
        const result = await post(config.changePlanUrl, {plan: button.dataset.plan, setup_intent: setupIntent});
        show(result.message, 'success', button);
        setTimeout(function () { window.location.reload(); }, 2500);
      } catch (error) {
        show(error.message, 'error', button);
        setBusy(false);
      }
    });
  });
})();
