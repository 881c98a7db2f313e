"""Russian words for the flow's codes, as operators read them in notes and on screens."""

from __future__ import annotations

# The flow's steps and Twilio's final call statuses, as operators read them.
STEP_WORDS = {
    "start": "приветствие",
    "choose_account": "выбор лицевого счёта",
    "account_number": "ввод лицевого счёта",
    "second_fact": "проверка номера квартиры",
    "value": "ввод показания",
    "confirm": "подтверждение показания",
    "transfer": "перевод на оператора",
    "summary": "итог звонка",
    "done": "после прощания",
}
CALL_STATUS_WORDS = {
    "completed": "абонент положил трубку",
    "busy": "занято",
    "no-answer": "абонент не ответил",
    "failed": "не удалось соединиться",
    "canceled": "вызов отменён",
}
